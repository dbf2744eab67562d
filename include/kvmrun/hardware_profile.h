// The hardware a guest OS needs besides its clock: firmware, TPM, machine type, disk and
// cdrom bus, network card and display device, each decided with a reason, as the clock policy
// is (clock_policy.h). What the VmSpec asks for wins; the rest is the OS's default:
//   Windows 11 (booted from its disk or installer): UEFI with Secure Boot and a TPM 2.0 on
//   q35; Windows Vista and later: sata disks, e1000 or e1000e; Windows XP/2003: ide and
//   e1000; Linux and BSD: virtio. A direct kernel boot (--kernel) keeps SeaBIOS: the kernel
//   comes from the host, and Secure Boot would refuse one not signed for Microsoft's keys.
// Pure: nothing here reads the host (firmware.h finds the firmware files).
#ifndef KVMRUN_HARDWARE_PROFILE_H_
#define KVMRUN_HARDWARE_PROFILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "kvmrun/vm_spec.h"

namespace kvmrun {

struct HardwareProfile {
  Firmware firmware = Firmware::kBios;
  std::string firmware_reason;
  bool tpm = false;
  std::string tpm_reason;
  std::string machine;  // empty: QEMU's default machine type
  std::string machine_reason;
  DiskBus disk_bus = DiskBus::kVirtio;  // for disks without bus=
  std::string disk_bus_reason;
  DiskBus cdrom_bus = DiskBus::kSata;
  std::string cdrom_bus_reason;
  NicModel nic = NicModel::kVirtio;
  std::string nic_reason;
  std::string display_device;  // a QEMU device name; empty without a display
  std::string display_reason;
  // Never kAuto here: ResolveHardware decides what it can from the spec alone (the disks
  // unless there are only cdroms), ResolveBootOrder what needs the disks read.
  BootFrom boot_from = BootFrom::kDisk;
  std::string boot_reason;
};

// The profile for `spec`. Throws UsageError for choices that cannot go together: Secure Boot
// on a machine type other than q35, a cdrom on virtio, more devices than a bus has ports.
HardwareProfile ResolveHardware(const VmSpec& spec);

// The memory and CPUs a guest OS needs at least, for a VM whose size the user left open (the
// CLI's --memory and --cpus). VmSpec's own defaults stay 512 MiB and 1 CPU.
struct Sizing {
  std::uint64_t memory_mib = 512;
  int cpus = 1;
  std::string reason;
};
Sizing RecommendedSizing(GuestOs os, bool kernel_boot);

// With BootFrom::kAuto and a cdrom: the cdrom first when every writable disk is blank
// (DiskIsBlank: a new disk for an installer), with the reason. Reads the disks' first bytes.
void ResolveBootOrder(const VmSpec& spec, HardwareProfile& profile);

// Whether `machine` is a q35 machine type ("q35", "pc-q35-7.2").
bool IsQ35Machine(std::string_view machine);

// One row per choice for the --explain table: item, value, reason.
struct HardwareRow {
  std::string item;
  std::string value;
  std::string reason;
};
std::vector<HardwareRow> HardwareRows(const HardwareProfile& profile, const VmSpec& spec);

}  // namespace kvmrun

#endif  // KVMRUN_HARDWARE_PROFILE_H_

#include "kvmrun/hardware_profile.h"

#include <algorithm>

#include "kvmrun/error.h"
#include "kvmrun/guest_os.h"

namespace kvmrun {
namespace {

// Windows releases before Vista have no AHCI driver of their own, and no e1000e one.
bool IsWindowsBeforeVista(GuestOs os) {
  return os == GuestOs::kWindowsXp || os == GuestOs::kWindows2003;
}

// Windows 8 and Server 2012 were the first with an in-box driver for the e1000e (82574L).
bool IsWindowsBefore8(GuestOs os) {
  return IsWindowsBeforeVista(os) || os == GuestOs::kWindowsVista || os == GuestOs::kWindows7;
}

bool IsLegacy(GuestOs os) {
  return os == GuestOs::kLinuxLegacy || os == GuestOs::kLinuxLegacy64 || os == GuestOs::kOther;
}

constexpr int kAhciPorts = 6;  // one ich9-ahci controller
constexpr int kIdeUnits = 4;   // two channels of two (PIIX), or q35's AHCI ports taken as IDE

}  // namespace

bool IsQ35Machine(std::string_view machine) {
  return machine == "q35" || machine.rfind("pc-q35-", 0) == 0;
}

Sizing RecommendedSizing(GuestOs os, bool kernel_boot) {
  const GuestOsInfo& info = Describe(os);
  if (kernel_boot || info.family != GuestFamily::kWindows) {
    return {512, 1, "enough for a kernel and its initramfs; more when asked for"};
  }
  if (os == GuestOs::kWindows11) {
    return {4096, 2, "Windows 11's installer refuses less than 4 GiB and 2 CPUs"};
  }
  if (IsWindowsBeforeVista(os)) return {512, 1, std::string(info.description) + " runs in 512 MiB"};
  return {2048, 2, std::string(info.description) + " needs 2 GiB to install (64-bit)"};
}

HardwareProfile ResolveHardware(const VmSpec& spec) {
  HardwareProfile p;
  const GuestOsInfo& info = Describe(spec.os);
  const std::string os_name(info.description);
  const bool windows = info.family == GuestFamily::kWindows;
  const bool kernel_boot = !spec.kernel.empty();

  // Firmware and TPM: asked for, else what the OS requires of a machine it installs on.
  const bool windows11_install = spec.os == GuestOs::kWindows11 && !kernel_boot;
  if (spec.firmware) {
    p.firmware = *spec.firmware;
    p.firmware_reason = "asked for";
  } else if (windows11_install) {
    p.firmware = Firmware::kUefiSecure;
    p.firmware_reason =
        "Windows 11 requires UEFI with Secure Boot: OVMF with Microsoft's keys enrolled";
  } else {
    p.firmware = Firmware::kBios;
    p.firmware_reason = kernel_boot ? "a direct kernel boot needs no firmware features "
                                      "(UEFI firmware boots the kernel as an EFI program)"
                                    : "SeaBIOS, QEMU's default, boots every x86 OS in the catalog";
  }
  if (spec.tpm) {
    p.tpm = *spec.tpm;
    p.tpm_reason = "asked for";
  } else if (windows11_install) {
    p.tpm = true;
    p.tpm_reason = "Windows 11 requires a TPM 2.0: swtpm, its state kept with the VM";
  } else {
    p.tpm = false;
    p.tpm_reason = "none unless asked for";
  }

  // Secure Boot needs SMM to protect its variables, which only q35 emulates with OVMF.
  if (!spec.machine.empty()) {
    p.machine = spec.machine;
    p.machine_reason = "asked for";
    if (p.firmware == Firmware::kUefiSecure && !IsQ35Machine(spec.machine)) {
      throw UsageError("machine",
                       "'" + spec.machine +
                           "' cannot run uefi-secure firmware, which needs SMM on "
                           "q35; valid: q35 or pc-q35-X.Y, or UEFI firmware without Secure Boot");
    }
  } else if (p.firmware == Firmware::kUefiSecure) {
    p.machine = "q35";
    p.machine_reason = "Secure Boot keeps its variables in SMM, which OVMF supports on q35 only";
  } else {
    p.machine_reason = "QEMU's default (pc, i440FX)";
  }

  if (IsWindowsBeforeVista(spec.os) || IsLegacy(spec.os)) {
    p.disk_bus = DiskBus::kIde;
    p.disk_bus_reason = os_name + " may have no AHCI or virtio driver; every x86 OS reads IDE";
    p.cdrom_bus = DiskBus::kIde;
    p.cdrom_bus_reason = p.disk_bus_reason;
  } else if (windows) {
    p.disk_bus = DiskBus::kSata;
    p.disk_bus_reason =
        "Windows' installer has no virtio driver (bus=virtio with the "
        "virtio-win drivers on a second cdrom is faster)";
    p.cdrom_bus = DiskBus::kSata;
    p.cdrom_bus_reason = "AHCI, which Windows reads since Vista";
  } else {
    p.disk_bus = DiskBus::kVirtio;
    p.disk_bus_reason = os_name + " has virtio drivers";
    p.cdrom_bus = DiskBus::kSata;
    p.cdrom_bus_reason = "AHCI, which " + os_name + " and its installers read";
  }

  if (spec.nic_model) {
    p.nic = *spec.nic_model;
    p.nic_reason = "asked for";
  } else if (windows && IsWindowsBefore8(spec.os)) {
    p.nic = NicModel::kE1000;
    p.nic_reason = os_name + " has a driver for the e1000 (82540EM) of its own";
  } else if (windows) {
    p.nic = NicModel::kE1000e;
    p.nic_reason =
        "Windows has a driver for the e1000e (82574L) of its own since Windows 8 "
        "(virtio with the virtio-win drivers is faster)";
  } else if (IsLegacy(spec.os)) {
    p.nic = NicModel::kE1000;
    p.nic_reason = os_name + " may have no virtio-net driver";
  } else {
    p.nic = NicModel::kVirtio;
    p.nic_reason = os_name + " has virtio drivers";
  }

  switch (spec.display.kind) {
    case DisplayKind::kNone:
      p.display_reason =
          "no display: the serial console is the way in (a VNC display for a screen)";
      break;
    case DisplayKind::kSpice:
      p.display_device = "qxl-vga";
      p.display_reason = "QXL, the display device SPICE clients accelerate";
      break;
    case DisplayKind::kVnc:
    case DisplayKind::kGtk:
      if (info.family == GuestFamily::kLinux && !IsLegacy(spec.os)) {
        p.display_device = "virtio-vga";
        p.display_reason = os_name + " drives virtio-gpu (and its VGA mode before that)";
      } else {
        p.display_device = "VGA";
        p.display_reason =
            "standard VGA (Bochs VBE), which " + os_name + " drives with its basic display driver";
      }
      break;
  }

  if (spec.boot_from != BootFrom::kAuto) {
    p.boot_from = spec.boot_from;
    p.boot_reason = "asked for";
  } else if (spec.cdroms.empty()) {
    p.boot_from = BootFrom::kDisk;
    p.boot_reason = spec.disks.empty() ? "nothing else to boot" : "no cdrom";
  } else if (spec.disks.empty()) {
    p.boot_from = BootFrom::kCdrom;
    p.boot_reason = "no disk";
  } else {
    p.boot_from = BootFrom::kDisk;
    p.boot_reason = "the disk, unless every disk is blank: then the cdrom, as for an install";
  }

  // Ports: a cdrom is never virtio; a bus has so many ports.
  int counts[4] = {0, 0, 0, 0};
  for (const DiskSpec& disk : spec.disks) ++counts[static_cast<int>(disk.bus.value_or(p.disk_bus))];
  if (!spec.cdroms.empty() && p.cdrom_bus == DiskBus::kVirtio) p.cdrom_bus = DiskBus::kSata;
  counts[static_cast<int>(p.cdrom_bus)] += static_cast<int>(spec.cdroms.size());
  if (counts[static_cast<int>(DiskBus::kSata)] > kAhciPorts) {
    throw UsageError("disks", std::to_string(counts[static_cast<int>(DiskBus::kSata)]) +
                                  " disks and cdroms on sata; its controller has " +
                                  std::to_string(kAhciPorts) +
                                  " ports (put some on virtio or scsi)");
  }
  if (counts[static_cast<int>(DiskBus::kIde)] > kIdeUnits) {
    throw UsageError("disks", std::to_string(counts[static_cast<int>(DiskBus::kIde)]) +
                                  " disks and cdroms on ide; it has " + std::to_string(kIdeUnits) +
                                  " (put some on sata, virtio or scsi)");
  }
  return p;
}

std::vector<HardwareRow> HardwareRows(const HardwareProfile& p, const VmSpec& spec) {
  const Sizing sizing = RecommendedSizing(spec.os, !spec.kernel.empty());
  std::vector<HardwareRow> rows = {
      {"size",
       std::to_string(sizing.memory_mib) + " MiB, " + std::to_string(sizing.cpus) + " CPU" +
           (sizing.cpus == 1 ? "" : "s"),
       sizing.reason},
      {"firmware", std::string(ToString(p.firmware)), p.firmware_reason},
      {"tpm", p.tpm ? "tpm2 (swtpm)" : "none", p.tpm_reason},
      {"machine", p.machine.empty() ? "default" : p.machine, p.machine_reason},
      {"disk bus", std::string(ToString(p.disk_bus)), p.disk_bus_reason},
      {"cdrom bus", std::string(ToString(p.cdrom_bus)), p.cdrom_bus_reason},
      {"network card", std::string(ToString(p.nic)),
       p.nic_reason + (spec.network || !spec.forwards.empty() ? "" : " (with a network)")},
      {"display", p.display_device.empty() ? "none" : p.display_device, p.display_reason},
      {"boot", std::string(ToString(p.boot_from)) + " first", p.boot_reason},
  };
  return rows;
}

}  // namespace kvmrun

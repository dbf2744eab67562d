// What a user asks for when they start a VM: the guest OS (and so its clock policy), the
// hardware, the boot payload, and how kvmrun should run it. Plain data; BuildQemuArgv()
// (qemu_command.h) turns it into a QEMU command line and ValidateVmSpec() checks it first.
#ifndef KVMRUN_VM_SPEC_H_
#define KVMRUN_VM_SPEC_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/clock_policy.h"

namespace kvmrun {

// Which accelerator to use. kAuto takes KVM when it is usable, else TCG, and says why.
enum class AccelRequest { kAuto, kKvm, kTcg };
inline constexpr std::array kAllAccelRequests{AccelRequest::kAuto, AccelRequest::kKvm,
                                              AccelRequest::kTcg};
std::string_view ToString(AccelRequest request);
AccelRequest ParseAccelRequest(std::string_view text, std::string_view option = "--accel");

// What happens to the clock verification result before the guest runs.
enum class VerifyMode { kOff, kWarn, kEnforce };
inline constexpr std::array kAllVerifyModes{VerifyMode::kOff, VerifyMode::kWarn,
                                            VerifyMode::kEnforce};
std::string_view ToString(VerifyMode mode);
VerifyMode ParseVerifyMode(std::string_view text, std::string_view option = "--verify");

enum class DiskFormat { kRaw, kQcow2 };
std::string_view ToString(DiskFormat format);

struct DiskSpec {
  std::string path;
  DiskFormat format = DiskFormat::kRaw;  // DetectDiskFormat() picks it from the file's header
  bool read_only = false;
  bool snapshot = false;  // writes go to a temporary overlay and are discarded
};

struct VmSpec {
  std::string name = "kvmrun";  // shown by QEMU (-name) and in process listings
  GuestOs os = GuestOs::kLinux;
  ClockOverrides clock_overrides;

  std::string qemu;  // path of qemu-system-x86_64; empty: $KVMRUN_QEMU, then PATH
  AccelRequest accel = AccelRequest::kAuto;
  std::string machine;    // e.g. "q35"; empty: QEMU's default machine
  std::string cpu_model;  // empty: "host" under KVM, "max" under TCG
  std::uint64_t memory_mib = 512;
  int cpus = 1;

  std::string kernel;  // direct kernel boot, with initrd and append
  std::string initrd;
  std::string append;
  std::vector<DiskSpec> disks;
  std::string cdrom;
  bool network = false;                    // a user-mode (SLIRP) NIC; off by default
  bool no_reboot = false;                  // a guest reboot (or panic with panic=-1) ends QEMU
  std::vector<std::string> firmware_dirs;  // -L; added automatically for a QEMU outside /usr

  // A public QMP monitor at this path (mode 0600), besides kvmrun's private one.
  std::string qmp_socket;
  // Extra QEMU arguments, appended last. They can override anything, the clock policy
  // included; verification then says so.
  std::vector<std::string> extra_args;

  VerifyMode verify = VerifyMode::kEnforce;
};

// Parses a memory size: "512" (MiB), "512M", "2G", "1024K". Throws UsageError naming the
// option and the valid forms for 0, garbage, or more than 1 TiB.
std::uint64_t ParseMemorySize(std::string_view text, std::string_view option = "--memory");

// The format of the disk image at `path` from its first bytes (qcow2 magic, else raw).
// Throws UsageError when the file cannot be read.
DiskFormat DetectDiskFormat(const std::string& path);

// Checks everything that can be checked before QEMU runs: sizes, counts, and that the kernel,
// initrd, disks and cdrom are readable regular files. Throws UsageError naming the first
// problem.
void ValidateVmSpec(const VmSpec& spec);

}  // namespace kvmrun

#endif  // KVMRUN_VM_SPEC_H_

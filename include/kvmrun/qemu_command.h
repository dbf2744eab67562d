// VmSpec -> QEMU argv. Pure: the argv is data, built before the single spawn, never passed
// through a shell, and printable with `kvmrun run --dry-run`.
#ifndef KVMRUN_QEMU_COMMAND_H_
#define KVMRUN_QEMU_COMMAND_H_

#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/clock_rendering.h"
#include "kvmrun/hardware_profile.h"
#include "kvmrun/vm_spec.h"

namespace kvmrun {

// Everything BuildQemuArgv needs besides the spec: the decisions made by probing.
struct LaunchPlan {
  std::string qemu;  // absolute path of the binary
  Accel accel = Accel::kTcg;
  std::string cpu_model;  // the model the clock policy's CPU features are added to
  ClockRendering clock;
  std::vector<std::string> firmware_dirs;  // -L, beyond the spec's own
  // Where QEMU listens for the guest agent's connection (with spec.agent); empty: no port.
  std::string agent_socket;
  // The hardware decided for the spec's OS (hardware_profile.h).
  HardwareProfile hardware;
  // With UEFI firmware: the code image and this VM's own copy of the variable store.
  std::string firmware_code;
  std::string firmware_vars;
  bool firmware_requires_smm = false;
  // With a TPM: swtpm's control socket.
  std::string tpm_socket;
  // With vnc=unix or spice: the display's socket.
  std::string display_socket;
  // Empty: the argv kvmrun runs (paused, its QMP and console on inherited descriptors).
  // Else a command line that runs without kvmrun (--dry-run): not paused, the console on
  // QEMU's stdio, and a QMP monitor listening at this path.
  std::string standalone_qmp_socket;
};

// kvmrun's private QMP connection and the serial console as QEMU sees them: the first two
// descriptors kvmrun passes (SpawnRequest::pass_fds), so always 3 and 4, in --dry-run too.
inline constexpr int kQmpFd = 3;
inline constexpr int kConsoleFd = 4;

// The ids kvmrun gives its chardevs; an extra -chardev with the same id is rejected by QEMU.
inline constexpr char kQmpChardevId[] = "kvmrun-qmp";
inline constexpr char kConsoleChardevId[] = "kvmrun-console";
inline constexpr char kPublicQmpChardevId[] = "kvmrun-qmp-public";
inline constexpr char kAgentChardevId[] = "kvmrun-agent";
inline constexpr char kTpmChardevId[] = "kvmrun-tpm";

// QEMU's comma syntax for option values: each ',' in `value` is doubled.
std::string EscapeQemuOptionValue(std::string_view value);

// `path` as a name QEMU cannot read as anything but a local file: a relative path gets "./"
// in front, so no ':' can come before its first '/' (QEMU's protocol prefixes, "nbd:",
// "json:").
std::string LocalPath(std::string_view path);

// The start of a -drive value that opens `path` as a local file in `format`, whatever the name
// looks like: with `file=`, QEMU reads "nbd:...", "json:{...}" or "vm-12:00.img" as a
// protocol; with the file driver named explicitly, the name is only a name.
std::string LocalFileDrive(std::string_view path, DiskFormat format);

// Every user value in the argv is escaped or validated (ValidateVmSpec) so that it stays one
// value: a name, path or model never adds options of its own. spec.extra_args are the
// exception by design, appended verbatim.

// The kernel command line QEMU gets for `spec` (its -append): spec.append, plus no_timer_check
// for a Linux kernel booted directly under TCG (a starved vCPU otherwise fails Linux's timer
// check and panics, as Nova's libvirt driver knows).
std::string KernelCommandLine(const VmSpec& spec, Accel accel);

// The full argv, argv[0] included. QEMU starts paused (-S) with no default devices; the clock
// arguments come after the machine and CPU so a user's extra arguments, appended last, are
// the only thing that can override them.
std::vector<std::string> BuildQemuArgv(const VmSpec& spec, const LaunchPlan& plan);

}  // namespace kvmrun

#endif  // KVMRUN_QEMU_COMMAND_H_

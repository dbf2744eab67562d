// VmSpec -> QEMU argv. Pure: the argv is data, built before the single spawn, never passed
// through a shell, and printable with `kvmrun run --dry-run`.
#ifndef KVMRUN_QEMU_COMMAND_H_
#define KVMRUN_QEMU_COMMAND_H_

#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/clock_rendering.h"
#include "kvmrun/vm_spec.h"

namespace kvmrun {

// Everything BuildQemuArgv needs besides the spec: the decisions made by probing.
struct LaunchPlan {
  std::string qemu;  // absolute path of the binary
  Accel accel = Accel::kTcg;
  std::string cpu_model;  // the model the clock policy's CPU features are added to
  ClockRendering clock;
  int qmp_fd = -1;                         // kvmrun's private QMP connection, as numbered in QEMU
  int console_fd = -1;                     // the serial console, as numbered in QEMU
  std::vector<std::string> firmware_dirs;  // -L, beyond the spec's own
};

// The ids kvmrun gives its chardevs; an extra -chardev with the same id is rejected by QEMU.
inline constexpr char kQmpChardevId[] = "kvmrun-qmp";
inline constexpr char kConsoleChardevId[] = "kvmrun-console";
inline constexpr char kPublicQmpChardevId[] = "kvmrun-qmp-public";

// QEMU's comma syntax for option values: each ',' in `value` is doubled.
std::string EscapeQemuOptionValue(std::string_view value);

// The full argv, argv[0] included. QEMU starts paused (-S) with no default devices; the clock
// arguments come after the machine and CPU so a user's extra arguments, appended last, are
// the only thing that can override them.
std::vector<std::string> BuildQemuArgv(const VmSpec& spec, const LaunchPlan& plan);

}  // namespace kvmrun

#endif  // KVMRUN_QEMU_COMMAND_H_

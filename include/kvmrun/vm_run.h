// Running a started VM until it ends: the loop behind `kvmrun run`, for embedders as well.
//
//   auto stop = kvmrun::StopRequests::ForSignals({SIGINT, SIGTERM, SIGHUP});
//   auto vm = kvmrun::Vm::Start(spec, options);
//   vm->Continue();
//   kvmrun::RunOutcome out = kvmrun::RunUntilExit(*vm, {.timeout = 60s, .stop = stop.get()});
//
// The VM runs until QEMU exits by itself (the guest powered off, rebooted with no_reboot,
// crashed), the timeout passes, or a stop is requested. The last two run the shutdown ladder
// with `grace` for the guest to power off; a second request during the ladder kills QEMU at
// once. Nothing is left running when it returns.
#ifndef KVMRUN_VM_RUN_H_
#define KVMRUN_VM_RUN_H_

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/clock_verify.h"
#include "kvmrun/console.h"
#include "kvmrun/guest_clock.h"
#include "kvmrun/stop_requests.h"
#include "kvmrun/vm.h"

namespace kvmrun {

// A time the guest did not run, seen by the run's stall watch once it ended.
struct VmStall {
  enum class Kind {
    kPaused,         // stopped over QMP (someone's 'stop', a migration, an I/O error)
    kStopped,        // QEMU's process was stopped (SIGSTOP, a debugger, a frozen cgroup)
    kUnresponsive,   // QEMU did not answer QMP for a second or more (a starved host)
    kHostSuspended,  // the host slept (CLOCK_BOOTTIME ran ahead of CLOCK_MONOTONIC)
  };
  Kind kind = Kind::kPaused;
  std::chrono::milliseconds length{0};
};
std::string_view ToString(VmStall::Kind kind);

// The guest-clock gate of a run: once the guest agent answers, the guest's wall-clock offset
// and clocksource are read and compared with the policy (guest_clock.h), on a thread of the
// run's own, while the VM runs.
struct GuestClockGate {
  std::chrono::milliseconds wait{120000};  // for the guest to boot and start its agent
  std::chrono::milliseconds max_offset = kDefaultMaxGuestOffset;
  // A mismatch ends the run (stopped_by kGuestClockMismatch), unless the stall watch saw
  // the VM stall before it (the offset then measures the stall, which on_stall reports).
  bool stop_on_mismatch = false;
  // Called (on the gate's thread) with the rows once read, or with "no agent" rows when none
  // answered within `wait`. Not called when the VM ended first.
  std::function<void(const std::vector<ClockCheck>&)> on_result;
};

// RunOutcome::stopped_by when the guest-clock gate ended the run.
inline constexpr char kGuestClockMismatch[] = "guest clock mismatch";

struct RunLimits {
  // From the call; then the ladder. None: no limit.
  std::optional<std::chrono::milliseconds> timeout;
  // How long the guest gets to power off when the ladder runs.
  std::chrono::milliseconds grace = Vm::kDefaultPowerdownGrace;
  // Requests that end the run (through the ladder).
  StopRequests* stop = nullptr;
  // When set, the outcome says how long after the call a console line first matched it. The
  // watcher consumes console lines (see ConsoleLog::WaitFor).
  std::optional<ConsolePattern> marker;
  // Called once when the ladder begins, with what started it ("SIGTERM", "timeout").
  std::function<void(std::string_view why)> on_stopping;
  // The stall watch: when set, the VM is looked at every `stall_poll` (QEMU's process state,
  // QMP query-status and its answer time, the host's suspend time) and this is called on the
  // run's thread after each stall has ended, so it may talk to the guest (a resync). A stall
  // shorter than about one `stall_poll` may go unseen.
  std::function<void(const VmStall&)> on_stall;
  std::chrono::milliseconds stall_poll{250};
  // Check the guest's own clock once its agent answers (VMs with an agent port only).
  std::optional<GuestClockGate> guest_clock;
};

struct RunOutcome {
  ExitStatus status;
  // Empty when QEMU exited by itself; else "timeout" or the stop request ("SIGINT", or the
  // reason given to StopRequests::Request).
  std::string stopped_by;
  ShutdownStep step = ShutdownStep::kAlreadyExited;  // where the ladder ended, when it ran
  std::string shutdown_reason;                       // from QEMU's SHUTDOWN event, if any
  std::string shutdown_note;                         // ShutdownResult::note, when it ran
  std::optional<std::chrono::milliseconds> marker_after;
  std::chrono::milliseconds ran{0};
  std::vector<VmStall> stalls;          // with the stall watch on
  std::vector<ClockCheck> guest_clock;  // the gate's rows, when it got to read them

  // The guest ended by itself and QEMU exited cleanly.
  bool ok() const { return stopped_by.empty() && status.Success(); }
};

// Throws what Vm::Shutdown throws (QEMU survived SIGKILL).
RunOutcome RunUntilExit(Vm& vm, const RunLimits& limits);

}  // namespace kvmrun

#endif  // KVMRUN_VM_RUN_H_

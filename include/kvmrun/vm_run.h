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

#include "kvmrun/console.h"
#include "kvmrun/stop_requests.h"
#include "kvmrun/vm.h"

namespace kvmrun {

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
};

struct RunOutcome {
  ExitStatus status;
  // Empty when QEMU exited by itself; else "timeout" or the stop request ("SIGINT", or the
  // reason given to StopRequests::Request).
  std::string stopped_by;
  ShutdownStep step = ShutdownStep::kAlreadyExited;  // where the ladder ended, when it ran
  std::string shutdown_reason;                       // from QEMU's SHUTDOWN event, if any
  std::optional<std::chrono::milliseconds> marker_after;
  std::chrono::milliseconds ran{0};

  // The guest ended by itself and QEMU exited cleanly.
  bool ok() const { return stopped_by.empty() && status.Success(); }
};

// Throws what Vm::Shutdown throws (QEMU survived SIGKILL).
RunOutcome RunUntilExit(Vm& vm, const RunLimits& limits);

}  // namespace kvmrun

#endif  // KVMRUN_VM_RUN_H_

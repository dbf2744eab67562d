#include "kvmrun/vm_run.h"

#include <atomic>
#include <thread>

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Watches the console for the marker on its own thread, and is always joined: the wait is cut
// into slices so that the destructor (on every path, exceptions included) ends it promptly.
class MarkerWatch {
 public:
  MarkerWatch(Vm& vm, const std::optional<ConsolePattern>& marker, Clock::time_point start) {
    if (!marker) return;
    thread_ = std::jthread([this, &vm, pattern = *marker, start](std::stop_token token) {
      ConsoleScan scan;
      while (!token.stop_requested()) {
        const ConsoleMatch match = vm.console().WaitFor(pattern, 100ms, &scan);
        if (match.outcome == ConsoleMatch::Outcome::kMatched) {
          after_ms_ =
              std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
          return;
        }
        if (match.outcome == ConsoleMatch::Outcome::kClosed) return;
      }
    });
  }

  // Waits for the watcher (the console has closed by then, so promptly) and reports.
  std::optional<std::chrono::milliseconds> Finish() {
    if (thread_.joinable()) thread_.join();
    const long long ms = after_ms_.load();
    if (ms < 0) return std::nullopt;
    return std::chrono::milliseconds(ms);
  }

 private:
  std::atomic<long long> after_ms_{-1};
  std::jthread thread_;  // last: joined (after a stop request) before the members it uses go
};

}  // namespace

RunOutcome RunUntilExit(Vm& vm, const RunLimits& limits) {
  const auto start = Clock::now();
  MarkerWatch watch(vm, limits.marker, start);
  const auto deadline = limits.timeout ? start + *limits.timeout : Clock::time_point::max();
  const int stop_fd = limits.stop != nullptr ? limits.stop->fd() : -1;

  RunOutcome outcome;
  std::optional<ExitStatus> status;
  while (!status) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(
        std::min(deadline - Clock::now(), std::chrono::duration_cast<Clock::duration>(24h)));
    status = vm.WaitForExit(std::max(left, 0ms), stop_fd);
    if (status) break;
    if (limits.stop != nullptr && limits.stop->Pending()) {
      outcome.stopped_by = limits.stop->Take().value_or("a stop request");
    } else if (Clock::now() >= deadline) {
      outcome.stopped_by = "timeout";
    } else {
      continue;
    }
    if (limits.on_stopping) limits.on_stopping(outcome.stopped_by);
    const ShutdownResult result = vm.Shutdown(limits.grace, limits.stop);
    status = result.status;
    outcome.step = result.step;
  }
  outcome.status = *status;
  outcome.marker_after = watch.Finish();
  outcome.shutdown_reason = vm.ShutdownReason();
  outcome.ran = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return outcome;
}

}  // namespace kvmrun

#include "kvmrun/vm_run.h"

#include <time.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "kvmrun/guest_os.h"
#include "kvmrun/qmp_commands.h"

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

// Reads the guest's clock once its agent answers, on its own thread; always joined. The
// agent is asked in one-second attempts so that the destructor ends the wait promptly.
class GuestClockWatch {
 public:
  GuestClockWatch(const Vm& vm, const std::optional<GuestClockGate>& gate) {
    if (!gate || vm.agent_socket().empty()) return;
    thread_ = std::jthread([this, &vm, gate = *gate](std::stop_token token) {
      const bool linux_guest = Describe(vm.policy().os).family == GuestFamily::kLinux;
      const auto deadline = Clock::now() + gate.wait;
      std::unique_ptr<GuestAgent> agent;
      std::string why;
      while (!agent && !token.stop_requested() && Clock::now() < deadline) {
        try {
          agent = ConnectGuestAgent(vm.agent_socket(), 1s);
        } catch (const QmpDisconnected&) {
          return;  // QEMU has gone: the run is ending
        } catch (const Error& e) {
          why = e.what();
        }
      }
      if (token.stop_requested()) return;
      // The reading itself is bounded as a whole: a guest whose agent floods its port or never
      // ends a file cannot keep this thread (and the run's end, which joins it) waiting.
      if (agent) agent->LimitTo(Clock::now() + 10s);
      GuestClockReading reading;
      try {
        reading = agent ? ReadGuestClock(*agent, linux_guest) : NoAgentReading(why);
      } catch (const Error&) {
        return;  // the port closed while reading: the run is ending
      }
      auto rows = CompareGuestClock(vm.policy(), vm.accel().accel, reading, gate.max_offset);
      bool mismatch = false;
      for (const ClockCheck& row : rows) mismatch |= row.outcome == CheckOutcome::kMismatch;
      if (gate.on_result) gate.on_result(rows);
      {
        std::lock_guard lock(mutex_);
        rows_ = std::move(rows);
      }
      if (mismatch && gate.stop_on_mismatch) mismatch_ = true;
    });
  }

  bool mismatch() const { return mismatch_; }

  std::vector<ClockCheck> Finish() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
    std::lock_guard lock(mutex_);
    return rows_;
  }

 private:
  std::atomic<bool> mismatch_{false};
  std::mutex mutex_;
  std::vector<ClockCheck> rows_;
  std::jthread thread_;  // last: joined before the members it uses go
};

std::chrono::milliseconds SuspendedSoFar() {
  timespec boot{}, mono{};
  clock_gettime(CLOCK_BOOTTIME, &boot);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  return std::chrono::seconds(boot.tv_sec - mono.tv_sec) +
         std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::nanoseconds(boot.tv_nsec - mono.tv_nsec));
}

// The state letter of /proc/PID/stat ('R', 'S', 'T' stopped, 't' traced); '?' when unreadable.
char ProcessState(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(stat, text);
  const std::size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() ? text[paren + 2] : '?';
}

// Looks at the VM now and then; Poll() returns a stall once it has ended.
class StallWatch {
 public:
  explicit StallWatch(Vm& vm) : vm_(vm), suspended_(SuspendedSoFar()) {}

  bool active() const { return stalled_; }

  std::optional<VmStall> Poll() {
    const auto suspended = SuspendedSoFar();
    const auto slept = suspended - suspended_;
    suspended_ = suspended;
    if (slept >= 1s) return VmStall{VmStall::Kind::kHostSuspended, slept};

    const char state = ProcessState(vm_.pid());
    if (state == 'T' || state == 't') return Begin(VmStall::Kind::kStopped);
    // Paused over QMP: QEMU's STOP event says so, as soon as anything reads the connection.
    // Only starvation has no event, so while the VM runs QEMU is asked at most once a second
    // (and timed); during a stall, at every poll, which also reads the RESUME that ends it.
    if (vm_.PausedByEvent()) Begin(VmStall::Kind::kPaused);
    if (!stalled_ && Clock::now() < next_ask_) return std::nullopt;
    const auto asked = Clock::now();
    next_ask_ = asked + 1s;
    bool running = true;
    try {
      running = QueryStatus(vm_.qmp()).running;
    } catch (const QmpTimeout&) {
      return Begin(VmStall::Kind::kUnresponsive);
    } catch (const Error&) {
      return std::nullopt;  // QEMU is going away: the exit is seen by the wait
    }
    const auto answered = Clock::now();
    if (!running) return Begin(VmStall::Kind::kPaused);
    if (stalled_) return End();
    if (answered - asked >= 1s) {  // stopped or starved while it was asked
      return VmStall{VmStall::Kind::kUnresponsive,
                     std::chrono::duration_cast<std::chrono::milliseconds>(answered - asked)};
    }
    return std::nullopt;
  }

 private:
  std::optional<VmStall> Begin(VmStall::Kind kind) {
    if (!stalled_) {
      stalled_ = true;
      since_ = Clock::now();
      kind_ = kind;
    }
    return std::nullopt;
  }
  std::optional<VmStall> End() {
    const VmStall stall{
        kind_, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since_)};
    stalled_ = false;
    return stall;
  }

  Vm& vm_;
  std::chrono::milliseconds suspended_;
  bool stalled_ = false;
  Clock::time_point since_{};
  Clock::time_point next_ask_{};
  VmStall::Kind kind_ = VmStall::Kind::kPaused;
};

}  // namespace

std::string_view ToString(VmStall::Kind kind) {
  switch (kind) {
    case VmStall::Kind::kPaused:
      return "paused over QMP";
    case VmStall::Kind::kStopped:
      return "QEMU stopped by a signal";
    case VmStall::Kind::kUnresponsive:
      return "QEMU did not answer";
    case VmStall::Kind::kHostSuspended:
      return "the host was suspended";
  }
  return "?";
}

RunOutcome RunUntilExit(Vm& vm, const RunLimits& limits) {
  const auto start = Clock::now();
  MarkerWatch watch(vm, limits.marker, start);
  const auto deadline = limits.timeout ? start + *limits.timeout : Clock::time_point::max();
  const int stop_fd = limits.stop != nullptr ? limits.stop->fd() : -1;

  RunOutcome outcome;
  std::optional<StallWatch> stalls;
  if (limits.on_stall) stalls.emplace(vm);
  GuestClockWatch guest_clock(vm, limits.guest_clock);
  const auto slice =
      limits.on_stall || limits.guest_clock ? std::max(limits.stall_poll, 10ms) : 24h;
  std::optional<ExitStatus> status;
  while (!status) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(
        std::min(deadline - Clock::now(), std::chrono::duration_cast<Clock::duration>(slice)));
    status = vm.WaitForExit(std::max(left, 0ms), stop_fd);
    if (status) break;
    if (stalls && !(limits.stop != nullptr && limits.stop->Pending())) {
      if (const auto stall = stalls->Poll()) {
        outcome.stalls.push_back(*stall);
        limits.on_stall(*stall);
      }
    }
    if (limits.stop != nullptr && limits.stop->Pending()) {
      outcome.stopped_by = limits.stop->Take().value_or("a stop request");
    } else if (guest_clock.mismatch() &&
               !(stalls && (stalls->active() || !outcome.stalls.empty()))) {
      // (A gate that read the guest's clock after a stall measured the stall, not the policy.)
      outcome.stopped_by = kGuestClockMismatch;
    } else if (Clock::now() >= deadline) {
      outcome.stopped_by = "timeout";
    } else {
      continue;
    }
    if (limits.on_stopping) limits.on_stopping(outcome.stopped_by);
    const ShutdownResult result = vm.Shutdown(limits.grace, limits.stop);
    status = result.status;
    outcome.step = result.step;
    outcome.shutdown_note = result.note;
  }
  outcome.status = *status;
  outcome.marker_after = watch.Finish();
  outcome.guest_clock = guest_clock.Finish();
  outcome.shutdown_reason = vm.ShutdownReason();
  outcome.ran = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return outcome;
}

}  // namespace kvmrun

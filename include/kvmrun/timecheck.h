// Measuring, in a real guest, how many timer ticks a clock policy loses when the VM stalls.
//
// The probe guest (timecheck/kvmrun_probe.c, packed into the test guest) programs the CMOS RTC
// to interrupt at a fixed rate and prints, once a second, its monotonic time and the count of
// IRQ 8 so far. kvmrun boots it under a policy, stalls the VM the way real hosts do (SIGSTOP
// of QEMU, QMP stop/cont, a starved host CPU) at the same guest times, and compares the ticks
// counted with the ticks a perfect clock would have seen, against host wall time and against
// the guest's own clock.
//
// The arithmetic (ComputeTickReport) and the stall schedule (StallScheduler) are pure and
// tested on recorded output; RunTimecheck drives a real VM.
#ifndef KVMRUN_TIMECHECK_H_
#define KVMRUN_TIMECHECK_H_

#include <array>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/vm.h"

namespace kvmrun {

// One line of the probe, with the host's time of arrival.
struct TickSample {
  int seq = 0;
  double host_s = 0;    // host monotonic seconds when the line arrived
  double guest_s = 0;   // the guest's CLOCK_MONOTONIC, seconds
  long long ticks = 0;  // IRQ 8 count
};

// "KVMRUN-TICKS seq=3 mono_ms=5079 ticks=3079 rate=1024" -> its fields (host_s left 0);
// nullopt for any other line. `rate` receives the rate when given.
std::optional<TickSample> ParseTickLine(std::string_view line, int* rate = nullptr);

enum class StallKind { kNone, kSigstop, kQmp, kStarve };
inline constexpr std::array kAllStallKinds{StallKind::kNone, StallKind::kSigstop, StallKind::kQmp,
                                           StallKind::kStarve};
std::string_view ToString(StallKind kind);
StallKind ParseStallKind(std::string_view text, std::string_view field = "stall");

// When the stalls happen, in guest seconds since the probe started: evenly spread over the
// run, the last well before its end so a catch-up can be seen.
struct StallPlan {
  StallKind kind = StallKind::kNone;
  double seconds = 0;
  std::vector<double> at_guest_s;
};
StallPlan MakeStallPlan(StallKind kind, int stalls, double stall_seconds, int duration_s);

// Which planned stall is due at a guest time. Pure: the caller feeds it the guest clock.
class StallScheduler {
 public:
  explicit StallScheduler(StallPlan plan) : plan_(std::move(plan)) {}
  // The index of the next stall not done yet whose time has come at `guest_s`, if any; it is
  // then considered done.
  std::optional<std::size_t> Due(double guest_s);
  bool finished() const { return next_ == plan_.at_guest_s.size(); }

 private:
  StallPlan plan_;
  std::size_t next_ = 0;
};

// A stall as it happened.
struct StallRecord {
  double guest_at = 0;    // guest time it was due at
  double host_start = 0;  // host monotonic seconds
  double host_end = 0;
};

struct TickReport {
  int rate = 0;
  long long counted = 0;        // ticks over the measured window
  double host_seconds = 0;      // window length by host wall time
  double guest_seconds = 0;     // by the guest's clock
  double ratio_host = 0;        // counted / (rate x host_seconds)
  double ratio_guest = 0;       // counted / (rate x guest_seconds)
  long long worst_deficit = 0;  // most ticks missing in any one sample interval, per second
  // Per stall: seconds from its end until the count caught up with host time (within 2%), or
  // nullopt when it never did.
  std::vector<std::optional<double>> catch_up_s;
  double drift_ppm = 0;               // (counted - expected by host time) / expected, in millionths
  std::vector<std::string> warnings;  // lost lines, counter resets
};

// The arithmetic over the samples of one run. Robust to lost lines (gaps in seq), a reboot or
// a counter that goes backwards (the count is continued from where it was, with a warning).
TickReport ComputeTickReport(const std::vector<TickSample>& samples, int rate,
                             const std::vector<StallRecord>& stalls);

struct TimecheckOptions {
  StallKind stall = StallKind::kSigstop;
  int stalls = 3;
  double stall_seconds = 3;
  int duration_s = 30;
  int rate_hz = 1024;
  // For QMP stalls: resume with rtc-reset-reinjection, dropping the ticks owed for the pause.
  bool drop_owed_ticks = false;
  VmSpec base;   // qemu, accel, kernel and initrd of the probe guest; os and clock set per run
  VmOptions vm;  // runner, cache, notices
  // Progress, one line at a time ("linux-legacy: stall 2/3 (SIGSTOP 3 s) at guest 15 s").
  std::function<void(const std::string&)> on_progress;
};

struct TimecheckRun {
  std::string label;  // e.g. "linux-legacy" or "default"
  ClockPolicy policy;
  Accel accel = Accel::kTcg;
  std::vector<TickSample> samples;
  std::vector<StallRecord> stalls;
  TickReport report;
};

// Throws UsageError naming the field: stalls 0 to 100, stall_seconds in (0, 600], duration_s
// 5 to 86400, rate_hz a power of two from 2 to 8192, drop_owed_ticks only with QMP stalls.
void ValidateTimecheckOptions(const TimecheckOptions& options);

// Boots the probe guest under `policy_os` with `overrides` (the HPET is forced off: with it on,
// Linux routes IRQ 8 away from the RTC), runs the stall plan and returns the measurements.
// Throws UsageError (ValidateTimecheckOptions, ValidateVmSpec) before anything runs, VmError
// when the guest does not produce probe output.
TimecheckRun RunTimecheck(const std::string& label, GuestOs policy_os, ClockOverrides overrides,
                          const TimecheckOptions& options);

// Side by side: one column per run.
std::string FormatTimecheckTable(const std::vector<TimecheckRun>& runs,
                                 const TimecheckOptions& options);
nlohmann::json TimecheckToJson(const std::vector<TimecheckRun>& runs,
                               const TimecheckOptions& options);

// The wall-clock mode: the guest's own wall clock, read through the guest agent, around each
// stall. Works with any guest that runs qemu-guest-agent (the probe guest does), since it
// reads the clock the guest's users see instead of counting interrupts. The guest cannot be
// asked while it is stopped, so "during" a stall is the first reading after it.
struct WallClockStall {
  double before_s = 0;  // the guest's offset from host time just before the stall
  double after_s = 0;   // ... just after it
  // Seconds from the stall's end until the offset was back within 0.1 s of before_s, or
  // nullopt when it was not before the next stall (or the run's end).
  std::optional<double> catch_up_s;
  double last_s = 0;  // the offset at the end of the watch after the stall
};

struct WallClockRun {
  std::string label;
  ClockPolicy policy;
  Accel accel = Accel::kTcg;
  std::string clocksource;  // the guest's, when it is Linux
  double start_offset_s = 0;
  double end_offset_s = 0;
  double worst_uncertainty_s = 0;
  std::vector<WallClockStall> stalls;
};

// Boots `options.base` (any guest with an agent; its kernel command line as given) under
// `policy_os` with `overrides`, waits for the agent, and stalls it `stalls` times spread over
// `duration_s` seconds of host time, reading the guest's offset around each stall. Throws
// UsageError before anything runs, GuestAgentUnavailable when no agent answers within 5
// minutes, VmError when the guest ends early.
WallClockRun RunWallClockCheck(const std::string& label, GuestOs policy_os,
                               ClockOverrides overrides, const TimecheckOptions& options);
std::string FormatWallClockTable(const std::vector<WallClockRun>& runs,
                                 const TimecheckOptions& options);
nlohmann::json WallClockToJson(const std::vector<WallClockRun>& runs,
                               const TimecheckOptions& options);

}  // namespace kvmrun

#endif  // KVMRUN_TIMECHECK_H_

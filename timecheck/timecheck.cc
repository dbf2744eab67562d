#include "kvmrun/timecheck.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "kvmrun/error.h"
#include "policy/names.h"
#include "policy/text_table.h"
#include "timecheck/timecheck_internal.h"

namespace kvmrun {

using namespace timecheck_internal;

std::string_view ToString(StallKind kind) {
  switch (kind) {
    case StallKind::kNone:
      return "none";
    case StallKind::kSigstop:
      return "sigstop";
    case StallKind::kQmp:
      return "qmp";
    case StallKind::kStarve:
      return "starve";
  }
  return "?";
}

StallKind ParseStallKind(std::string_view text, std::string_view option) {
  return ParseName(text, option, kAllStallKinds);
}

std::optional<TickSample> ParseTickLine(std::string_view line, int* rate) {
  const auto at = line.find("KVMRUN-TICKS seq=");
  if (at == std::string_view::npos) return std::nullopt;
  const std::string text(line.substr(at));
  TickSample s;
  long long mono_ms = 0;
  int r = 0;
  if (std::sscanf(text.c_str(), "KVMRUN-TICKS seq=%d mono_ms=%lld ticks=%lld rate=%d", &s.seq,
                  &mono_ms, &s.ticks, &r) != 4 ||
      s.ticks < 0 || r <= 0) {
    return std::nullopt;
  }
  s.guest_s = static_cast<double>(mono_ms) / 1000;
  if (rate != nullptr) *rate = r;
  return s;
}

StallPlan MakeStallPlan(StallKind kind, int stalls, double stall_seconds, int duration_s) {
  StallPlan plan{kind, stall_seconds, {}};
  if (kind == StallKind::kNone) return plan;
  for (int i = 0; i < stalls; ++i) {
    plan.at_guest_s.push_back(static_cast<double>(duration_s) * (i + 1) / (stalls + 1));
  }
  return plan;
}

std::optional<std::size_t> StallScheduler::Due(double guest_s) {
  if (next_ < plan_.at_guest_s.size() && guest_s >= plan_.at_guest_s[next_]) return next_++;
  return std::nullopt;
}

TickReport ComputeTickReport(const std::vector<TickSample>& samples, int rate,
                             const std::vector<StallRecord>& stalls) {
  TickReport r;
  r.rate = rate;
  r.catch_up_s.assign(stalls.size(), std::nullopt);
  if (samples.size() < 2 || rate <= 0) {
    r.warnings.push_back("too few samples to measure anything");
    return r;
  }
  // Continuous tick and guest-time series: a counter or clock that goes backwards (a reboot)
  // restarts from zero, so the run goes on from where it was.
  std::vector<double> ticks(samples.size()), guest(samples.size());
  ticks[0] = static_cast<double>(samples[0].ticks);
  guest[0] = samples[0].guest_s;
  for (std::size_t i = 1; i < samples.size(); ++i) {
    const TickSample& prev = samples[i - 1];
    const TickSample& cur = samples[i];
    if (cur.seq > prev.seq + 1) {
      r.warnings.push_back(std::to_string(cur.seq - prev.seq - 1) + " line(s) lost after seq " +
                           std::to_string(prev.seq));
    }
    if (cur.ticks < prev.ticks) {
      r.warnings.push_back("the tick counter went backwards at seq " + std::to_string(cur.seq) +
                           " (guest reboot?); counting on from there");
      ticks[i] = ticks[i - 1] + static_cast<double>(cur.ticks);
    } else {
      ticks[i] = ticks[i - 1] + static_cast<double>(cur.ticks - prev.ticks);
    }
    guest[i] = cur.guest_s < prev.guest_s ? guest[i - 1] + (cur.host_s - prev.host_s)
                                          : guest[i - 1] + (cur.guest_s - prev.guest_s);
  }
  const double host0 = samples.front().host_s;
  const auto deficit = [&](std::size_t i) {  // ticks behind host time at sample i
    return rate * (samples[i].host_s - host0) - (ticks[i] - ticks[0]);
  };

  r.counted = static_cast<long long>(ticks.back() - ticks.front());
  r.host_seconds = samples.back().host_s - host0;
  r.guest_seconds = guest.back() - guest.front();
  const double expected_host = rate * r.host_seconds;
  r.ratio_host = expected_host > 0 ? r.counted / expected_host : 0;
  r.ratio_guest = r.guest_seconds > 0 ? r.counted / (rate * r.guest_seconds) : 0;
  r.drift_ppm = expected_host > 0 ? (r.counted - expected_host) / expected_host * 1e6 : 0;
  for (std::size_t i = 1; i < samples.size(); ++i) {
    const double dt = samples[i].host_s - samples[i - 1].host_s;
    if (dt <= 0) continue;
    const double missing = (rate * dt - (ticks[i] - ticks[i - 1])) / dt;
    r.worst_deficit = std::max(r.worst_deficit, static_cast<long long>(std::llround(missing)));
  }
  // Caught up: back within 2% of a second's ticks of the deficit from before the stall.
  const double tolerance = std::max(2.0, 0.02 * rate);
  for (std::size_t s = 0; s < stalls.size(); ++s) {
    double before = 0;
    for (std::size_t i = 0; i < samples.size() && samples[i].host_s <= stalls[s].host_start; ++i) {
      before = deficit(i);
    }
    for (std::size_t i = 0; i < samples.size(); ++i) {
      if (samples[i].host_s < stalls[s].host_end) continue;
      if (deficit(i) <= before + tolerance) {
        r.catch_up_s[s] = samples[i].host_s - stalls[s].host_end;
        break;
      }
    }
  }
  return r;
}

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double Now() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

// Collects the probe's lines from the console, stamped with their arrival time.
class ProbeOutput {
 public:
  void Append(std::string_view bytes) {
    std::lock_guard lock(mu_);
    const double now = Now();
    lines_.Push(bytes, [&](const std::string& line) {
      int rate = 0;
      if (auto sample = ParseTickLine(line, &rate)) {
        sample->host_s = now;
        samples_.push_back(*sample);
      } else if (line.find("KVMRUN-TICKS-START") != std::string::npos) {
        started_ = true;
      } else if (line.find("KVMRUN-TICKS-END") != std::string::npos) {
        ended_ = true;
      } else if (line.find("KVMRUN-TICKS-ERROR") != std::string::npos) {
        error_ = line.substr(line.find("KVMRUN-TICKS-ERROR"));
        ended_ = true;
      }
    });
    cv_.notify_all();
  }

  // Waits until `done` holds or `timeout` passes; returns whether it holds.
  template <typename Pred>
  bool WaitFor(Pred done, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return done(); });
  }

  std::vector<TickSample> samples() const {
    std::lock_guard lock(mu_);
    return samples_;
  }
  bool started() const { return started_; }
  bool ended() const { return ended_; }
  std::size_t count() const { return samples_.size(); }
  std::string error() const {
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  LineSplitter lines_;
  std::vector<TickSample> samples_;
  // Read by the measuring loop without the lock, written under it by the console thread.
  std::atomic<bool> started_ = false;
  std::atomic<bool> ended_ = false;
  std::string error_;
};

}  // namespace

namespace timecheck_internal {

// Keeps every core busy for `seconds`: the host CPU starvation a VM meets on a busy host.
void Starve(double seconds) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> burners;
  for (unsigned i = 0; i < std::max(1u, std::thread::hardware_concurrency()); ++i) {
    burners.emplace_back([&] {
      volatile unsigned long long spin = 0;
      while (!stop.load(std::memory_order_relaxed)) spin = spin + 1;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (std::thread& t : burners) t.join();
}

void Stall(Vm& vm, const TimecheckOptions& o) {
  const auto seconds = std::chrono::duration<double>(o.stall_seconds);
  switch (o.stall) {
    case StallKind::kNone:
      return;
    case StallKind::kSigstop:
      vm.SignalQemu(SIGSTOP);
      std::this_thread::sleep_for(seconds);
      vm.SignalQemu(SIGCONT);
      return;
    case StallKind::kQmp:
      vm.Pause();
      std::this_thread::sleep_for(seconds);
      vm.Resume(o.drop_owed_ticks ? MissedTicks::kDrop : MissedTicks::kCatchUp);
      return;
    case StallKind::kStarve:
      Starve(o.stall_seconds);
      return;
  }
}

std::string Fixed(double value, int digits) {
  char out[64];
  std::snprintf(out, sizeof(out), "%.*f", digits, value);
  return out;
}

std::string StallDescription(const TimecheckOptions& o) {
  if (o.stall == StallKind::kNone || o.stalls == 0) return "no stalls";
  const char* what =
      o.stall == StallKind::kSigstop ? "SIGSTOP/SIGCONT of QEMU"
      : o.stall == StallKind::kQmp
          ? (o.drop_owed_ticks ? "QMP stop/cont, owed ticks dropped" : "QMP stop/cont")
          : "host CPU starved";
  return std::to_string(o.stalls) + " x " + Fixed(o.stall_seconds, 1) + " s " + what;
}

std::string PolicyDescription(const ClockPolicy& p) {
  return "rtc " + std::string(ToString(p.rtc_policy.value)) + ", pit " +
         std::string(ToString(p.pit_policy.value));
}

}  // namespace timecheck_internal

void ValidateTimecheckOptions(const TimecheckOptions& o) {
  if (o.stalls < 0 || o.stalls > 100) {
    throw UsageError("stalls", "invalid value '" + std::to_string(o.stalls) + "'; valid: 0 to 100");
  }
  if (!(o.stall_seconds > 0) || o.stall_seconds > 600) {
    throw UsageError("stall_seconds", "invalid value '" + std::to_string(o.stall_seconds) +
                                          "'; valid: more than 0, at most 600");
  }
  if (o.duration_s < 5 || o.duration_s > 86400) {
    throw UsageError("duration_s", "invalid value '" + std::to_string(o.duration_s) +
                                       "'; valid: 5 to 86400 seconds");
  }
  if (o.rate_hz < 2 || o.rate_hz > 8192 || (o.rate_hz & (o.rate_hz - 1)) != 0) {
    throw UsageError("rate_hz", "invalid value '" + std::to_string(o.rate_hz) +
                                    "'; valid: a power of two from 2 to 8192");
  }
  if (o.drop_owed_ticks && o.stall != StallKind::kQmp) {
    throw UsageError("drop_owed_ticks", "only applies to QMP stalls");
  }
}

TimecheckRun RunTimecheck(const std::string& label, GuestOs policy_os, ClockOverrides overrides,
                          const TimecheckOptions& o) {
  ValidateTimecheckOptions(o);
  TimecheckRun run;
  run.label = label;
  // With the HPET on, Linux routes IRQ 8 away from the RTC and the probe counts nothing.
  overrides.hpet = Toggle::kOff;
  VmSpec spec = o.base;
  spec.os = policy_os;
  spec.clock_overrides = overrides;
  spec.name = "kvmrun-timecheck-" + label;
  spec.no_reboot = true;
  spec.append = "console=ttyS0 quiet panic=-1 kvmrun.probe=rate=" + std::to_string(o.rate_hz) +
                ",duration=" + std::to_string(o.duration_s);
  const auto progress = [&](const std::string& line) {
    if (o.on_progress) o.on_progress(label + ": " + line);
  };

  ProbeOutput output;
  VmOptions vm_options = o.vm;
  vm_options.on_console = [&](std::string_view bytes) { output.Append(bytes); };
  std::unique_ptr<Vm> vm = Vm::Start(spec, vm_options);
  run.policy = vm->policy();
  run.accel = vm->accel().accel;
  vm->Continue();
  progress("booting the probe guest (" + std::string(ToString(run.accel)) + ")");
  // In slices: a guest that panics or powers off ends the wait at once, not at the timeout.
  const auto boot_deadline = Clock::now() + (run.accel == Accel::kTcg ? 300s : 60s);
  bool booted = false;
  while (!(booted = output.WaitFor([&] { return output.started() || output.ended(); }, 250ms)) &&
         !vm->console().closed() && Clock::now() < boot_deadline) {
  }
  if (!booted || !output.started()) {
    const std::string error = output.error();
    const char* why = vm->console().closed() ? " (the guest ended)" : "";
    throw VmError("the timecheck probe did not start" + std::string(why) +
                      (error.empty() ? "" : ": " + error),
                  vm->argv(), vm->StderrTail(), vm->console().Tail());
  }
  progress("measuring for " + std::to_string(o.duration_s) + " s guest time, " +
           StallDescription(o));

  StallScheduler scheduler(MakeStallPlan(o.stall, o.stalls, o.stall_seconds, o.duration_s));
  const auto deadline = Clock::now() + std::chrono::seconds(o.duration_s) +
                        std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(o.stalls * o.stall_seconds)) +
                        120s;
  std::size_t seen = 0;
  while (!output.ended() && Clock::now() < deadline && !vm->WaitForExit(0ms)) {
    output.WaitFor([&] { return output.count() > seen || output.ended(); }, 500ms);
    const auto samples = output.samples();
    seen = samples.size();
    if (samples.empty()) continue;
    const double guest = samples.back().guest_s - samples.front().guest_s;
    if (auto due = scheduler.Due(guest)) {
      progress("stall " + std::to_string(*due + 1) + "/" + std::to_string(o.stalls) + " (" +
               std::string(ToString(o.stall)) + ", " + Fixed(o.stall_seconds, 1) + " s) at guest " +
               Fixed(guest, 1) + " s");
      StallRecord record{guest, Now(), 0};
      Stall(*vm, o);
      record.host_end = Now();
      run.stalls.push_back(record);
    }
  }
  run.samples = output.samples();
  if (!output.ended()) {
    throw VmError("the timecheck probe did not finish" +
                      (output.error().empty() ? "" : ": " + output.error()),
                  vm->argv(), vm->StderrTail(), vm->console().Tail());
  }
  vm->Shutdown(1s);
  run.report = ComputeTickReport(run.samples, o.rate_hz, run.stalls);
  return run;
}

std::string FormatTimecheckTable(const std::vector<TimecheckRun>& runs, const TimecheckOptions& o) {
  std::vector<TextRow> rows(10);
  rows[0] = {""};
  rows[1] = {"policy"};
  rows[2] = {"ticks counted"};
  rows[3] = {"expected by host time"};
  rows[4] = {"vs host wall time"};
  rows[5] = {"vs guest clock"};
  rows[6] = {"worst 1 s deficit"};
  rows[7] = {"catch-up after stalls"};
  rows[8] = {"drift"};
  rows[9] = {"accelerator"};
  for (const TimecheckRun& run : runs) {
    const TickReport& r = run.report;
    std::string catch_up;
    for (const auto& c : r.catch_up_s) {
      catch_up += (catch_up.empty() ? "" : ", ") + (c ? Fixed(*c, 1) + " s" : std::string("never"));
    }
    rows[0].push_back(run.label);
    rows[1].push_back(PolicyDescription(run.policy));
    rows[2].push_back(std::to_string(r.counted));
    rows[3].push_back(std::to_string(std::llround(r.rate * r.host_seconds)));
    rows[4].push_back(Fixed(r.ratio_host, 4));
    rows[5].push_back(Fixed(r.ratio_guest, 4));
    rows[6].push_back(std::to_string(r.worst_deficit) + " ticks");
    rows[7].push_back(catch_up.empty() ? "-" : catch_up);
    rows[8].push_back((r.drift_ppm >= 0 ? "+" : "") + Fixed(r.drift_ppm, 0) + " ppm");
    rows[9].push_back(std::string(ToString(run.accel)));
  }
  std::string out = "timecheck: RTC periodic interrupt at " + std::to_string(o.rate_hz) + " Hz, " +
                    std::to_string(o.duration_s) + " s of guest time, " + StallDescription(o) +
                    " (HPET off in every run)\n\n" + FormatTable(rows);
  for (const TimecheckRun& run : runs) {
    for (const std::string& w : run.report.warnings)
      out += "warning: " + run.label + ": " + w + "\n";
  }
  return out;
}

nlohmann::json TimecheckToJson(const std::vector<TimecheckRun>& runs, const TimecheckOptions& o) {
  nlohmann::json out = {{"rate_hz", o.rate_hz},
                        {"duration_s", o.duration_s},
                        {"stall",
                         {{"kind", ToString(o.stall)},
                          {"count", o.stalls},
                          {"seconds", o.stall_seconds},
                          {"drop_owed_ticks", o.drop_owed_ticks}}},
                        {"runs", nlohmann::json::array()}};
  for (const TimecheckRun& run : runs) {
    const TickReport& r = run.report;
    nlohmann::json catch_up = nlohmann::json::array();
    for (const auto& c : r.catch_up_s)
      catch_up.push_back(c ? nlohmann::json(*c) : nlohmann::json());
    out["runs"].push_back({{"label", run.label},
                           {"os", ToString(run.policy.os)},
                           {"rtc_policy", ToString(run.policy.rtc_policy.value)},
                           {"pit_policy", ToString(run.policy.pit_policy.value)},
                           {"accel", ToString(run.accel)},
                           {"ticks_counted", r.counted},
                           {"host_seconds", r.host_seconds},
                           {"guest_seconds", r.guest_seconds},
                           {"ratio_host", r.ratio_host},
                           {"ratio_guest", r.ratio_guest},
                           {"worst_deficit_ticks", r.worst_deficit},
                           {"catch_up_s", catch_up},
                           {"drift_ppm", r.drift_ppm},
                           {"warnings", r.warnings},
                           {"samples", run.samples.size()}});
  }
  return out;
}

}  // namespace kvmrun

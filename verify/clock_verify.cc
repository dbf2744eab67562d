// CompareClock and the report formats: the pure side of verification.
#include "kvmrun/clock_verify.h"

#include <algorithm>
#include <cstdlib>

#include "policy/text_table.h"

namespace kvmrun {

std::string_view ToString(CheckOutcome outcome) {
  switch (outcome) {
    case CheckOutcome::kOk:
      return "ok";
    case CheckOutcome::kMismatch:
      return "MISMATCH";
    case CheckOutcome::kNotApplicable:
      return "n/a";
    case CheckOutcome::kUnknown:
      return "unknown";
    case CheckOutcome::kIndistinguishable:
      return "indistinguishable";
  }
  return "?";
}

bool ClockReport::ok() const { return Mismatches().empty(); }

std::vector<const ClockCheck*> ClockReport::Mismatches() const {
  std::vector<const ClockCheck*> out;
  for (const ClockCheck& c : checks) {
    if (c.outcome == CheckOutcome::kMismatch) out.push_back(&c);
  }
  return out;
}

HostClock SystemHostClock() {
  return {[](std::time_t t) {
            std::tm local{};
            localtime_r(&t, &local);
            return local.tm_gmtoff;
          },
          [] { return std::time(nullptr); }};
}

ClockMismatchError::ClockMismatchError(ClockReport report)
    : Error([&] {
        std::string message = "clock verification failed:";
        for (const ClockCheck* c : report.Mismatches()) {
          message +=
              " " + c->timer + " expected " + c->expected + ", observed " + c->observed + ";";
        }
        message.pop_back();
        return message;
      }()),
      report_(std::move(report)) {}

namespace {

std::string OnOff(bool value) { return value ? "on" : "off"; }

// A check of a plain value: ok when equal, unknown when it could not be read.
template <typename T>
ClockCheck Check(std::string timer, const std::string& expected, const Observed<T>& observed,
                 const std::function<std::string(const T&)>& show) {
  ClockCheck c{std::move(timer), expected, "", CheckOutcome::kUnknown, observed.where};
  if (!observed.value) {
    c.observed = "?";
    c.detail = observed.error;
    return c;
  }
  c.observed = show(*observed.value);
  c.outcome = c.observed == expected ? CheckOutcome::kOk : CheckOutcome::kMismatch;
  return c;
}

ClockCheck CheckRtcBase(const ClockPolicy& policy, const ClockReadback& r, const HostClock& host) {
  const std::string expected(ToString(policy.rtc_base.value));
  ClockCheck c{"rtc-base", expected, "?", CheckOutcome::kUnknown, r.rtc_time.where};
  if (!r.rtc_time.value) {
    c.detail = r.rtc_time.error;
    return c;
  }
  std::tm tm = *r.rtc_time.value;
  const std::time_t rtc = timegm(&tm);  // the RTC's fields read as if they were UTC
  const long from_utc = static_cast<long>(rtc - r.host_time);
  // Local time at the host instant; check the offsets at both ends of the tolerance window so
  // a DST change inside it cannot turn a match into a mismatch.
  const auto near_local = [&](long* distance) {
    bool near = false;
    *distance = 0;
    for (std::time_t t : {r.host_time - kRtcBaseToleranceSeconds, r.host_time,
                          r.host_time + kRtcBaseToleranceSeconds}) {
      const long d = from_utc - host.utc_offset(t);
      if (std::labs(d) <= kRtcBaseToleranceSeconds) near = true;
      if (t == r.host_time) *distance = d;
    }
    return near;
  };
  long from_local = 0;
  const bool is_utc = std::labs(from_utc) <= kRtcBaseToleranceSeconds;
  const bool is_local = near_local(&from_local);
  if (is_utc && is_local) {
    c.observed = "utc = localtime";
    c.outcome = CheckOutcome::kIndistinguishable;
    c.detail = "local time is UTC here: the two look the same (use a non-UTC TZ)";
  } else if (is_utc || is_local) {
    c.observed = is_utc ? "utc" : "localtime";
    c.outcome = c.observed == expected ? CheckOutcome::kOk : CheckOutcome::kMismatch;
  } else {
    c.observed = "other";
    c.outcome = CheckOutcome::kMismatch;
    c.detail = "RTC is " + std::to_string(from_utc) + " s from host UTC and " +
               std::to_string(from_local) + " s from host local time (a fixed -rtc base=DATE?)";
  }
  return c;
}

ClockCheck CheckPit(const ClockPolicy& policy, const ClockRendering& rendering,
                    const ClockReadback& r) {
  const std::string policy_value(ToString(policy.pit_policy.value));
  if (rendering.accel == Accel::kTcg) {
    ClockCheck c{"pit-policy", "n/a (isa-pit)", "?", CheckOutcome::kNotApplicable,
                 "TCG: isa-pit has no lost-tick policy"};
    if (!r.pit_type.value) {
      c.outcome = CheckOutcome::kUnknown;
      c.detail = r.pit_type.error;
    } else if (*r.pit_type.value == "isa-pit") {
      c.observed = "isa-pit";
    } else {
      c.observed = *r.pit_type.value;
      c.outcome = CheckOutcome::kMismatch;
      c.detail = "a " + c.observed + " under TCG";
    }
    return c;
  }
  ClockCheck c{"pit-policy", "kvm-pit " + policy_value, "?", CheckOutcome::kUnknown,
               r.pit_type.where};
  if (!r.pit_type.value) {
    c.detail = r.pit_type.error;
    return c;
  }
  if (*r.pit_type.value != "kvm-pit") {
    c.observed = *r.pit_type.value + " (no lost-tick policy)";
    c.outcome = CheckOutcome::kMismatch;
    c.detail = "the PIT is not KVM's in-kernel PIT (split irqchip?)";
    return c;
  }
  if (!r.pit_lost_tick_policy.value) {
    c.observed = "kvm-pit ?";
    c.detail = r.pit_lost_tick_policy.error;
    return c;
  }
  c.observed = "kvm-pit " + *r.pit_lost_tick_policy.value;
  c.outcome = c.observed == c.expected ? CheckOutcome::kOk : CheckOutcome::kMismatch;
  return c;
}

// hv-time, the Hyper-V set and kvmclock: per vCPU under KVM; not applicable under TCG.
template <typename T>
ClockCheck CheckCpus(const std::string& timer, const std::string& want, Accel accel,
                     const ClockReadback& r, Observed<T> CpuClockFlags::*flag,
                     const std::function<std::string(const T&)>& show,
                     const std::string& tcg_reason) {
  if (accel == Accel::kTcg) return {timer, "n/a", "-", CheckOutcome::kNotApplicable, tcg_reason};
  ClockCheck c{timer, want, "?", CheckOutcome::kUnknown, ""};
  if (r.cpus.empty()) {
    c.detail = r.cpus_error.empty() ? "no vCPUs listed" : r.cpus_error;
    return c;
  }
  std::string observed;
  for (const CpuClockFlags& cpu : r.cpus) {
    const Observed<T>& value = cpu.*flag;
    if (!value.value) {
      c.detail = cpu.qom_path + ": " + value.error;
      return c;
    }
    const std::string v = show(*value.value);
    if (observed.empty()) {
      observed = v;
    } else if (observed != v) {
      observed = "mixed";
    }
  }
  c.observed = observed;
  c.detail = std::to_string(r.cpus.size()) + " vCPU(s)";
  c.outcome = observed == want ? CheckOutcome::kOk : CheckOutcome::kMismatch;
  return c;
}

ClockCheck CheckCpuFlag(const std::string& timer, Toggle expected, Accel accel,
                        const ClockReadback& r, Observed<bool> CpuClockFlags::*flag,
                        const std::string& tcg_reason) {
  return CheckCpus<bool>(timer, OnOff(expected == Toggle::kOn), accel, r, flag, OnOff, tcg_reason);
}

// What the rendering put on the CPU of the Hyper-V set, in the order ReadHyperv reports it.
std::string WrittenHyperv(const ClockRendering& rendering) {
  std::string written;
  for (const HypervFeature& f : HypervFeatures(HypervSet::kFull)) {
    const std::string text = std::string(f.property) + std::string(f.value);
    if (std::find(rendering.cpu_features.begin(), rendering.cpu_features.end(), text) !=
        rendering.cpu_features.end()) {
      written += (written.empty() ? "" : ",") + text;
    }
  }
  return written.empty() ? "none" : written;
}

}  // namespace

ClockReport CompareClock(const ClockPolicy& policy, const ClockRendering& rendering,
                         const ClockReadback& r, const HostClock& host) {
  ClockReport report;
  const Accel accel = rendering.accel;
  report.checks.push_back(Check<bool>("accelerator", std::string(ToString(accel)), r.kvm_enabled,
                                      [](const bool& kvm) { return kvm ? "kvm" : "tcg"; }));
  report.checks.push_back(CheckRtcBase(policy, r, host));
  report.checks.push_back(
      Check<std::string>("rtc-policy", std::string(ToString(policy.rtc_policy.value)),
                         r.rtc_lost_tick_policy, [](const std::string& v) { return v; }));
  report.checks.push_back(CheckPit(policy, rendering, r));
  report.checks.push_back(Check<bool>("hpet", OnOff(policy.hpet.value == Toggle::kOn), r.hpet,
                                      [](const bool& on) { return OnOff(on); }));
  report.checks.push_back(CheckCpuFlag("hv-time", policy.hv_time.value, accel, r,
                                       &CpuClockFlags::hv_time,
                                       "TCG: Hyper-V enlightenments need KVM"));
  report.checks.push_back(CheckCpus<std::string>(
      "hyperv", WrittenHyperv(rendering), accel, r, &CpuClockFlags::hyperv,
      [](const std::string& v) { return v; }, "TCG: Hyper-V enlightenments need KVM"));
  report.checks.push_back(CheckCpuFlag("kvmclock", policy.kvmclock.value, accel, r,
                                       &CpuClockFlags::kvmclock, "TCG: kvm-clock needs KVM"));
  // A value this QEMU or this host's KVM cannot express was never written, and said so when the
  // VM was planned: its absence is not the VM drifting from what kvmrun set up.
  for (ClockCheck& c : report.checks) {
    for (const RenderedSetting& s : rendering.settings) {
      if (c.timer == ToString(s.setting) && !s.satisfiable &&
          c.outcome == CheckOutcome::kMismatch) {
        c.outcome = CheckOutcome::kNotApplicable;
        c.expected += " (cannot)";
        c.detail = s.note;
      }
    }
  }
  return report;
}

std::string FormatClockReport(const ClockReport& report) {
  std::vector<TextRow> rows = {{"TIMER", "EXPECTED", "OBSERVED", "RESULT", "DETAIL"}};
  for (const ClockCheck& c : report.checks) {
    rows.push_back({c.timer, c.expected, c.observed, std::string(ToString(c.outcome)), c.detail});
  }
  std::string out = FormatTable(rows);
  const auto mismatches = report.Mismatches();
  out += mismatches.empty()
             ? "clock verification: ok\n"
             : "clock verification: " + std::to_string(mismatches.size()) + " mismatch(es)\n";
  return out;
}

std::string SummarizeClockReport(const ClockReport& report) {
  const auto mismatches = report.Mismatches();
  std::string counts;
  for (CheckOutcome outcome : {CheckOutcome::kOk, CheckOutcome::kMismatch, CheckOutcome::kUnknown,
                               CheckOutcome::kIndistinguishable, CheckOutcome::kNotApplicable}) {
    const auto n = std::count_if(report.checks.begin(), report.checks.end(),
                                 [&](const ClockCheck& c) { return c.outcome == outcome; });
    if (n == 0) continue;
    counts +=
        (counts.empty() ? "" : ", ") + std::to_string(n) + " " + std::string(ToString(outcome));
  }
  return "clock verification: " +
         (mismatches.empty() ? std::string("ok")
                             : std::to_string(mismatches.size()) + " mismatch(es)") +
         " (" + counts + ")";
}

nlohmann::json ClockReportToJson(const ClockReport& report) {
  nlohmann::json checks = nlohmann::json::array();
  for (const ClockCheck& c : report.checks) {
    checks.push_back({{"timer", c.timer},
                      {"expected", c.expected},
                      {"observed", c.observed},
                      {"result", ToString(c.outcome)},
                      {"detail", c.detail}});
  }
  return {{"ok", report.ok()}, {"checks", checks}};
}

}  // namespace kvmrun

#include "kvmrun/guest_clock.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "kvmrun/guest_os.h"

namespace kvmrun {
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t ReadClock(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string Seconds(std::int64_t ns, bool sign) {
  char text[48];
  std::snprintf(text, sizeof(text), sign ? "%+.3f s" : "%.3f s", static_cast<double>(ns) / 1e9);
  return text;
}

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\0')) {
    text.pop_back();
  }
  return text;
}

// The local time zone's offset from UTC at `realtime_ns`, in seconds (east positive).
std::int64_t UtcOffsetAt(std::int64_t realtime_ns) {
  const time_t when = static_cast<time_t>(realtime_ns / 1'000'000'000);
  tm local{};
  if (localtime_r(&when, &local) == nullptr) return 0;
  return local.tm_gmtoff;
}

// "+05:30"
std::string UtcOffsetText(std::int64_t seconds) {
  char text[40];
  const long long minutes = (seconds < 0 ? -seconds : seconds) / 60;
  std::snprintf(text, sizeof(text), "%c%02lld:%02lld", seconds < 0 ? '-' : '+', minutes / 60,
                minutes % 60);
  return text;
}

// Why a guest is off by about the host's UTC offset, or "" when it is not: the guest reads its
// RTC in the other base than the one the policy gives QEMU.
std::string RtcBaseHint(const ClockPolicy& policy, const GuestOffset& offset,
                        std::int64_t host_utc_offset_s, std::int64_t max_ns) {
  if (host_utc_offset_s == 0) return "";
  const bool local = policy.rtc_base.value == RtcBase::kLocaltime;
  // Local RTC read as UTC: the guest is ahead by the UTC offset; UTC read as local: behind.
  const std::int64_t expected_ns = (local ? 1 : -1) * host_utc_offset_s * 1'000'000'000;
  const std::int64_t miss = offset.offset_ns - expected_ns;
  if ((miss < 0 ? -miss : miss) > max_ns + offset.uncertainty_ns) return "";
  const std::string zone = "UTC" + UtcOffsetText(host_utc_offset_s);
  return local ? "; off by the host's UTC offset (" + zone +
                     "): the policy keeps the RTC in local time and the guest reads it as UTC "
                     "(a Linux guest: timedatectl set-local-rtc 1, or a guest OS whose RTC is UTC)"
               : "; off by the host's UTC offset (" + zone +
                     "): the policy keeps the RTC in UTC and the guest reads it as local time "
                     "(a Windows guest: RealTimeIsUniversal, or a guest OS whose RTC is local)";
}

// Runs `read`, recording its result or the reason it failed. A lost connection propagates.
template <typename T, typename F>
Observed<T> Observe(const std::string& where, F read) {
  Observed<T> observed;
  observed.where = where;
  try {
    observed.value = read();
  } catch (const QmpDisconnected&) {
    throw;
  } catch (const std::exception& e) {
    observed.error = e.what();
  }
  return observed;
}

}  // namespace

HostTimeSource SystemTimeSource() {
  return {[] { return ReadClock(CLOCK_REALTIME); }, [] { return ReadClock(CLOCK_MONOTONIC); }};
}

std::string GuestOffset::ToString() const {
  if (uncertainty_ns >= 10'000'000)
    return Seconds(offset_ns, true) + " +- " + Seconds(uncertainty_ns, false);
  char ms[32];  // a round trip of a few ms or less: the uncertainty in ms, to be seen
  std::snprintf(ms, sizeof(ms), "%.2f ms", static_cast<double>(uncertainty_ns) / 1e6);
  return Seconds(offset_ns, true) + " +- " + ms;
}

std::int64_t GuestOffset::SurelyOffNs() const {
  return std::max<std::int64_t>(0, std::llabs(offset_ns) - uncertainty_ns);
}

GuestOffset OffsetFromSamples(const std::vector<WallClockSample>& samples) {
  GuestOffset best;
  best.samples = static_cast<int>(samples.size());
  std::vector<GuestOffset> kept;
  for (const WallClockSample& s : samples) {
    const std::int64_t real_rtt = s.host_after_ns - s.host_before_ns;
    const std::int64_t mono_rtt = s.mono_after_ns - s.mono_before_ns;
    if (real_rtt < 0 || std::llabs(real_rtt - mono_rtt) > kHostStepToleranceNs + mono_rtt / 1000) {
      ++best.discarded;  // the host's wall clock was stepped while the guest answered
      continue;
    }
    GuestOffset one;
    one.host_ns = s.host_before_ns + real_rtt / 2;
    one.offset_ns = s.guest_ns - one.host_ns;
    one.uncertainty_ns = (real_rtt + 1) / 2;
    kept.push_back(one);
  }
  if (kept.empty()) {
    throw Error("the host's wall clock was stepped during every one of " +
                std::to_string(samples.size()) + " guest time samples; try again");
  }
  const auto narrowest = std::min_element(
      kept.begin(), kept.end(),
      [](const auto& a, const auto& b) { return a.uncertainty_ns < b.uncertainty_ns; });
  // Consistent samples agree within their uncertainties (and a little for the guest's clock
  // resolution and slew); otherwise the guest's clock moved while it was measured.
  bool stepped = false;
  for (const GuestOffset& one : kept) {
    const std::int64_t allowed =
        one.uncertainty_ns + narrowest->uncertainty_ns + kHostStepToleranceNs;
    if (std::llabs(one.offset_ns - narrowest->offset_ns) > allowed) stepped = true;
  }
  const GuestOffset& chosen = stepped ? kept.back() : *narrowest;
  best.offset_ns = chosen.offset_ns;
  best.uncertainty_ns = chosen.uncertainty_ns;
  best.host_ns = chosen.host_ns;
  best.guest_stepped = stepped;
  return best;
}

GuestOffset MeasureGuestOffset(GuestAgent& agent, int samples, const HostTimeSource& host) {
  agent.Ping();  // sync first, so the first sample's round trip is not the sync's
  std::vector<WallClockSample> taken;
  for (int i = 0; i < std::max(samples, 1); ++i) {
    WallClockSample s;
    s.mono_before_ns = host.monotonic_ns();
    s.host_before_ns = host.realtime_ns();
    s.guest_ns = agent.GetTime();
    s.host_after_ns = host.realtime_ns();
    s.mono_after_ns = host.monotonic_ns();
    taken.push_back(s);
  }
  return OffsetFromSamples(taken);
}

GuestClocksource ReadGuestClocksource(GuestAgent& agent) {
  const std::string dir = "/sys/devices/system/clocksource/clocksource0/";
  GuestClocksource source;
  source.current = Trimmed(agent.ReadFile(dir + "current_clocksource"));
  source.available = Trimmed(agent.ReadFile(dir + "available_clocksource"));
  return source;
}

GuestClockReading ReadGuestClock(GuestAgent& agent, bool linux_guest, int samples,
                                 const HostTimeSource& host) {
  GuestClockReading reading;
  reading.offset = Observe<GuestOffset>("guest-get-time",
                                        [&] { return MeasureGuestOffset(agent, samples, host); });
  if (const auto& offset = reading.offset.value)
    reading.host_utc_offset_s = UtcOffsetAt(offset->host_ns);
  if (linux_guest) {
    reading.clocksource = Observe<GuestClocksource>("/sys/devices/system/clocksource/clocksource0",
                                                    [&] { return ReadGuestClocksource(agent); });
  } else {
    reading.clocksource.error = "not read: the policy is not a Linux guest's";
  }
  return reading;
}

GuestClockReading NoAgentReading(std::string why) {
  GuestClockReading reading;
  reading.no_agent = std::move(why);
  return reading;
}

GuestClockReading ReadGuestClockAt(const std::string& agent_socket, bool linux_guest,
                                   std::chrono::milliseconds wait) {
  if (agent_socket.empty()) return NoAgentReading("the VM has no guest agent port");
  // `wait` bounds the whole reading, not each step: an agent that floods its port with stale
  // replies, or never ends a file, cannot stretch it.
  const auto deadline = Clock::now() + wait;
  std::unique_ptr<GuestAgent> agent;
  try {
    agent = ConnectGuestAgent(agent_socket, wait);
  } catch (const Error& e) {
    return NoAgentReading(e.what());
  }
  agent->LimitTo(deadline);
  return ReadGuestClock(*agent, linux_guest);
}

// (Literals are assigned as std::string temporaries: GCC 12 at -O3 reports a false
// -Wrestrict for std::string::operator=(const char*) in this function, GCC bug 105329.)
std::vector<ClockCheck> CompareGuestClock(const ClockPolicy& policy, Accel accel,
                                          const GuestClockReading& reading,
                                          std::chrono::milliseconds max_offset) {
  const std::int64_t max_ns = std::chrono::nanoseconds(max_offset).count();
  ClockCheck time{"guest-time", "within +-" + Seconds(max_ns, false), "", CheckOutcome::kUnknown,
                  ""};
  const bool linux_guest = Describe(policy.os).family == GuestFamily::kLinux;
  ClockCheck source{"guest-clocksource", "", "", CheckOutcome::kUnknown, ""};
  if (!linux_guest) {
    source.expected = std::string("-");
  } else if (accel == Accel::kTcg) {
    // TCG has no kvm-clock; any other clocksource is the kernel's own choice (tsc, acpi_pm).
    source.expected = std::string("the kernel's pick, not kvm-clock");
  } else if (policy.kvmclock.value == Toggle::kOn) {
    source.expected = std::string("kvm-clock");
  } else {
    source.expected = std::string("not kvm-clock");
  }
  if (!reading.no_agent.empty()) {
    time.observed = source.observed = std::string("no agent");
    time.detail = source.detail = reading.no_agent;
    return {time, source};
  }

  if (const auto& offset = reading.offset.value) {
    time.observed = offset->ToString();
    time.outcome = offset->SurelyOffNs() > max_ns ? CheckOutcome::kMismatch : CheckOutcome::kOk;
    time.detail = "guest-get-time against host CLOCK_REALTIME, best of " +
                  std::to_string(offset->samples - offset->discarded) + " samples";
    if (offset->guest_stepped) time.detail += "; the guest's clock moved while measured";
    if (time.outcome == CheckOutcome::kMismatch) {
      time.detail += RtcBaseHint(policy, *offset, reading.host_utc_offset_s, max_ns);
      time.detail += "; setting it from the host's clock over the agent corrects it";
    }
  } else {
    time.observed = std::string("?");
    time.detail = reading.offset.error;
  }

  if (!linux_guest) {
    source.observed = std::string("-");
    source.outcome = CheckOutcome::kNotApplicable;
    source.detail = std::string("read from sysfs in Linux guests only");
  } else if (const auto& cs = reading.clocksource.value) {
    source.observed = cs->current;
    source.detail = "available: " + cs->available;
    if (accel == Accel::kTcg) {
      // TCG has no kvm-clock; whatever the kernel chose among the rest is its business.
      source.outcome = cs->current == "kvm-clock" ? CheckOutcome::kMismatch : CheckOutcome::kOk;
    } else if (policy.kvmclock.value == Toggle::kOn) {
      source.outcome = cs->current == "kvm-clock" ? CheckOutcome::kOk : CheckOutcome::kMismatch;
      if (source.outcome == CheckOutcome::kMismatch) {
        source.detail += "; the kernel has no kvm-clock, or was told clocksource=";
      }
    } else {
      source.outcome = cs->current == "kvm-clock" ? CheckOutcome::kMismatch : CheckOutcome::kOk;
    }
  } else {
    source.observed = std::string("?");
    source.detail = reading.clocksource.error;
  }
  return {time, source};
}

ResyncResult ResyncGuestClock(GuestAgent& agent, const HostTimeSource& host) {
  const auto start = Clock::now();
  ResyncResult result;
  result.before = MeasureGuestOffset(agent, 3, host);
  // The guest reads the value about half a round trip after it was taken here.
  const std::int64_t target = host.realtime_ns() + result.before.uncertainty_ns;
  try {
    agent.Execute("guest-set-time", {{"time", target}});
  } catch (const GuestAgentError& e) {
    // qemu-ga sets the system clock first, then runs /sbin/hwclock -w for the RTC; only a
    // failure of the second leaves the clock set.
    if (e.description().find("not currently supported") != std::string::npos) {
      throw GuestAgentError("guest-set-time", e.error_class(),
                            e.description() +
                                " (qemu-ga on Linux sets the clock only where /sbin/hwclock "
                                "exists: util-linux, or busybox's hwclock linked there)");
    }
    if (e.description().find("hwclock") == std::string::npos) throw;
    result.rtc_note = "the guest's system clock was set, its RTC was not: " + e.description();
  }
  result.after = MeasureGuestOffset(agent, 3, host);
  result.took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  return result;
}

nlohmann::json GuestOffsetToJson(const GuestOffset& offset) {
  return {{"offset_s", static_cast<double>(offset.offset_ns) / 1e9},
          {"uncertainty_s", static_cast<double>(offset.uncertainty_ns) / 1e9},
          {"samples", offset.samples},
          {"discarded", offset.discarded},
          {"guest_stepped", offset.guest_stepped}};
}

nlohmann::json ResyncResultToJson(const ResyncResult& result) {
  return {{"before", GuestOffsetToJson(result.before)},
          {"after", GuestOffsetToJson(result.after)},
          {"rtc_note", result.rtc_note},
          {"took_ms", static_cast<double>(result.took.count()) / 1000.0}};
}

std::string FormatResync(const ResyncResult& result) {
  std::string text = "offset " + result.before.ToString() + " -> " + result.after.ToString() +
                     " (set in " + std::to_string(result.took.count() / 1000) + " ms)";
  if (!result.rtc_note.empty()) text += "; " + result.rtc_note;
  return text;
}

}  // namespace kvmrun

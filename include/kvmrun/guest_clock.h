// The guest's own wall clock, seen and set through the guest agent: how far it is from the
// host's, which clocksource the guest kernel uses, and setting it right after a stall.
//
//   GuestAgent& agent = ...;                       // synced (guest_agent.h)
//   GuestOffset off = MeasureGuestOffset(agent);   // "+0.004 s +- 0.001 s"
//   ResyncResult r = ResyncGuestClock(agent);       // guest-set-time, then measured again
//
// An offset is measured by bracketing guest-get-time between two reads of the host's
// CLOCK_REALTIME: the guest read its clock somewhere inside that round trip, so the offset is
// taken at its midpoint and the uncertainty is half the round trip. Several samples are taken
// and the narrowest kept. A sample during which the host's wall clock was stepped (the
// realtime and monotonic round trips disagree) is discarded.
//
// The arithmetic (OffsetFromSamples) and the comparison with the policy (CompareGuestClock)
// are pure; the rest talks to an agent.
#ifndef KVMRUN_GUEST_CLOCK_H_
#define KVMRUN_GUEST_CLOCK_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "kvmrun/clock_policy.h"
#include "kvmrun/clock_verify.h"
#include "kvmrun/guest_agent.h"
#include "kvmrun/qemu_capabilities.h"

namespace kvmrun {

// The host clocks a measurement reads (a seam for tests), in nanoseconds.
struct HostTimeSource {
  std::function<std::int64_t()> realtime_ns;   // CLOCK_REALTIME, since the epoch
  std::function<std::int64_t()> monotonic_ns;  // CLOCK_MONOTONIC
};
HostTimeSource SystemTimeSource();

// One guest-get-time, bracketed by the host's clocks.
struct WallClockSample {
  std::int64_t host_before_ns = 0;  // CLOCK_REALTIME just before the command was sent
  std::int64_t host_after_ns = 0;   // ... just after its reply arrived
  std::int64_t mono_before_ns = 0;  // CLOCK_MONOTONIC at the same two moments
  std::int64_t mono_after_ns = 0;
  std::int64_t guest_ns = 0;  // what the guest answered
};

struct GuestOffset {
  std::int64_t offset_ns = 0;       // guest minus host: positive when the guest is ahead
  std::int64_t uncertainty_ns = 0;  // the true offset is within offset_ns +- this
  std::int64_t host_ns = 0;         // host time the offset refers to (the sample's midpoint)
  int samples = 0;                  // samples taken
  int discarded = 0;                // ... of which the host's clock stepped during
  // The kept samples disagree by more than their uncertainties: the guest's clock moved
  // (was stepped or slewed fast) during the measurement. The latest sample is reported then.
  bool guest_stepped = false;

  // "+0.004 s +- 0.001 s"
  std::string ToString() const;
  // |offset| minus the uncertainty, never negative: how far off the guest surely is.
  std::int64_t SurelyOffNs() const;
};

// A sample is discarded when its realtime and monotonic round trips differ by more than this
// plus 0.1 % of the round trip (NTP slews the host's wall clock by at most 0.05 %).
inline constexpr std::int64_t kHostStepToleranceNs = 100'000;

// Pure. Throws Error when no sample is usable (every one saw the host's clock step).
GuestOffset OffsetFromSamples(const std::vector<WallClockSample>& samples);

// Takes `samples` bracketed guest-get-time readings. Throws what GuestAgent::Execute throws,
// and Error as OffsetFromSamples.
GuestOffset MeasureGuestOffset(GuestAgent& agent, int samples = 5,
                               const HostTimeSource& host = SystemTimeSource());

// What sysfs says in a Linux guest.
struct GuestClocksource {
  std::string current;    // "kvm-clock", "tsc", "hpet", "acpi_pm"
  std::string available;  // space-separated
};
// Reads /sys/devices/system/clocksource/clocksource0 through the agent (Linux guests only).
GuestClocksource ReadGuestClocksource(GuestAgent& agent);

// Everything the guest-clock rows need, each read recorded or its failure kept.
struct GuestClockReading {
  // Non-empty when there is no agent to ask: no port ("started with --no-agent") or no answer
  // within the wait. Then nothing else is set.
  std::string no_agent;
  Observed<GuestOffset> offset;
  Observed<GuestClocksource> clocksource;  // error "not a Linux guest" when not read
  // The host's local time minus UTC when the offset was taken (what QEMU's -rtc base=localtime
  // adds). A guest off by about this much reads its RTC in the other base than the policy's.
  std::int64_t host_utc_offset_s = 0;
};

// The default for --max-offset. A freshly booted guest reads the RTC, whose resolution is one
// second, so it starts up to a second behind; two seconds leaves room for that and for TCG's
// slower boot, and is still far below the minutes of skew that break TLS, Kerberos (5 min) or
// make, which is what a stalled guest shows. docs/timekeeping.md has the measurements.
inline constexpr std::chrono::milliseconds kDefaultMaxGuestOffset{2000};

// Reads the offset and, when `linux_guest`, the clocksource. Agent errors (a command the agent
// refuses, a timeout) are recorded in the reading, not thrown.
GuestClockReading ReadGuestClock(GuestAgent& agent, bool linux_guest, int samples = 5,
                                 const HostTimeSource& host = SystemTimeSource());
// The reading when there is no agent: `why` says so.
GuestClockReading NoAgentReading(std::string why);
// Connects to the agent at `agent_socket` (ConnectGuestAgent, waiting up to `wait` for it to
// answer) and reads. No port, no connection or no answer: NoAgentReading saying which.
GuestClockReading ReadGuestClockAt(const std::string& agent_socket, bool linux_guest,
                                   std::chrono::milliseconds wait);

// Pure: the rows "guest-time" (a mismatch when the guest is surely more than `max_offset`
// off; one of about the host's UTC offset is named as an RTC base the guest does not share) and
// "guest-clocksource" (kvm-clock expected under KVM when the policy enables it, not kvm-clock when
// it disables it; under TCG whatever the kernel picked, usually tsc). Without an agent both rows
// are unknown, and nothing fails.
std::vector<ClockCheck> CompareGuestClock(const ClockPolicy& policy, Accel accel,
                                          const GuestClockReading& reading,
                                          std::chrono::milliseconds max_offset);

struct ResyncResult {
  GuestOffset before;
  GuestOffset after;
  // Set when the agent set the guest's system clock but could not write its RTC (qemu-ga runs
  // /sbin/hwclock -w after setting the time; a guest without it says so).
  std::string rtc_note;
  std::chrono::microseconds took{0};
};

// Sets the guest's wall clock from the host's (guest-set-time with the host's CLOCK_REALTIME,
// advanced by the measured one-way delay), measuring the offset before and after. Throws what
// GuestAgent::Execute throws (a guest that refuses to set its clock: GuestAgentError).
ResyncResult ResyncGuestClock(GuestAgent& agent, const HostTimeSource& host = SystemTimeSource());

nlohmann::json GuestOffsetToJson(const GuestOffset& offset);
nlohmann::json ResyncResultToJson(const ResyncResult& result);
// "offset +2.312 s +- 0.001 s -> +0.000 s +- 0.001 s (set in 14 ms)"
std::string FormatResync(const ResyncResult& result);

}  // namespace kvmrun

#endif  // KVMRUN_GUEST_CLOCK_H_

// The clock policy for a guest: what each emulated timer should do, and why.
//
// A ClockPolicy is pure intent, in QEMU's own terms (delay / discard / slew), independent of
// the QEMU version and accelerator; RenderClock() (clock_rendering.h) turns it into argv for a
// particular QEMU. Every decision carries a one-line reason and a source, and records whether
// a user override made it.
#ifndef KVMRUN_CLOCK_POLICY_H_
#define KVMRUN_CLOCK_POLICY_H_

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/guest_os.h"

namespace kvmrun {

// Where the RTC starts: UTC, or the host's local time (what Windows expects).
enum class RtcBase { kUtc, kLocaltime };
inline constexpr std::array kAllRtcBases{RtcBase::kUtc, RtcBase::kLocaltime};

// mc146818rtc lost_tick_policy. kSlew re-injects coalesced RTC interrupts at up to 8x the
// programmed rate until caught up (`-rtc driftfix=slew`); kDiscard drops them (QEMU default).
enum class RtcTickPolicy { kDiscard, kSlew };
inline constexpr std::array kAllRtcTickPolicies{RtcTickPolicy::kDiscard, RtcTickPolicy::kSlew};

// kvm-pit lost_tick_policy. kDelay: KVM re-injects missed PIT ticks (QEMU default);
// kDiscard: no re-injection (KVM_REINJECT_CONTROL pit_reinject=0). Only the in-kernel PIT
// under KVM has this knob.
enum class PitTickPolicy { kDelay, kDiscard };
inline constexpr std::array kAllPitTickPolicies{PitTickPolicy::kDelay, PitTickPolicy::kDiscard};

enum class Toggle { kOff, kOn };
inline constexpr std::array kAllToggles{Toggle::kOff, Toggle::kOn};

// Which clock drives the RTC (`-rtc clock=`). kHost (QEMU's default) follows the host's
// CLOCK_REALTIME, steps included; kRt is the host's monotonic clock: it never steps and keeps
// running while the VM is stopped; kVm is virtual time, which stops with the VM.
enum class RtcClock { kHost, kRt, kVm };
inline constexpr std::array kAllRtcClocks{RtcClock::kHost, RtcClock::kRt, RtcClock::kVm};

// The Hyper-V enlightenments a Windows guest gets besides hv-time (which is its own setting,
// being the clock). kVista, for Windows Vista / Server 2008: relaxed timing, the virtual APIC
// assist page, paravirtual spinlocks, VP index, run time, reset, frequencies and paravirtual TLB
// flush; kFull, from Windows 7 on, adds the synthetic interrupt controller and timers and
// paravirtual IPIs. HypervFeatures() lists each set.
enum class HypervSet { kOff, kVista, kFull };
inline constexpr std::array kAllHypervSets{HypervSet::kOff, HypervSet::kVista, HypervSet::kFull};

std::string_view ToString(RtcBase value);
std::string_view ToString(RtcTickPolicy value);
std::string_view ToString(PitTickPolicy value);
std::string_view ToString(Toggle value);
std::string_view ToString(RtcClock value);
std::string_view ToString(HypervSet value);

// The settings a policy decides, in the order they are shown.
enum class ClockSetting {
  kRtcBase,
  kRtcPolicy,
  kRtcClock,
  kPitPolicy,
  kHpet,
  kHvTime,
  kHyperv,
  kKvmclock
};
inline constexpr std::array kAllClockSettings{ClockSetting::kRtcBase,  ClockSetting::kRtcPolicy,
                                              ClockSetting::kRtcClock, ClockSetting::kPitPolicy,
                                              ClockSetting::kHpet,     ClockSetting::kHvTime,
                                              ClockSetting::kHyperv,   ClockSetting::kKvmclock};
std::string_view ToString(ClockSetting setting);  // "rtc-base", "pit-policy", ...

// Why a setting has its value.
struct Rationale {
  std::string reason;       // one line
  std::string source;       // where the reasoning comes from
  bool overridden = false;  // true when a user override chose the value

  friend bool operator==(const Rationale&, const Rationale&) = default;
};

template <typename T>
struct Choice {
  T value;
  Rationale why;

  friend bool operator==(const Choice&, const Choice&) = default;
};

// Something the guest itself must be told (a kernel argument, a boot.ini switch): kvmrun can
// not set it, but the user must know.
struct GuestHint {
  std::string setting;  // e.g. "clocksource=acpi_pm (kernel command line)"
  Rationale why;

  friend bool operator==(const GuestHint&, const GuestHint&) = default;
};

struct ClockPolicy {
  GuestOs os = GuestOs::kOther;
  Choice<RtcBase> rtc_base;
  Choice<RtcTickPolicy> rtc_policy;
  Choice<RtcClock> rtc_clock;
  Choice<PitTickPolicy> pit_policy;
  Choice<Toggle> hpet;
  Choice<Toggle> hv_time;  // the Hyper-V reference counter and TSC page (hv-time)
  Choice<HypervSet> hyperv;
  Choice<Toggle> kvmclock;
  std::vector<GuestHint> guest_hints;

  friend bool operator==(const ClockPolicy&, const ClockPolicy&) = default;
};

// Per-timer values that win over the OS defaults.
struct ClockOverrides {
  std::optional<RtcBase> rtc_base;
  std::optional<RtcTickPolicy> rtc_policy;
  std::optional<RtcClock> rtc_clock;
  std::optional<PitTickPolicy> pit_policy;
  std::optional<Toggle> hpet;
  std::optional<Toggle> hv_time;
  std::optional<HypervSet> hyperv;
  std::optional<Toggle> kvmclock;

  bool empty() const { return *this == ClockOverrides{}; }
  friend bool operator==(const ClockOverrides&, const ClockOverrides&) = default;
};

// The overrides a policy was made with (each setting whose Rationale says overridden): what a
// VM's record or a snapshot's header keeps so that the VM is judged by the policy it was given.
ClockOverrides OverridesOf(const ClockPolicy& policy);
// `base` with every value `over` sets replacing its own.
ClockOverrides MergeOverrides(ClockOverrides base, const ClockOverrides& over);
// "rtc-policy=discard, hpet=on", or "" when there are none.
std::string OverridesText(const ClockOverrides& overrides);

// One Hyper-V enlightenment as QEMU's x86 CPU property names it, with what it needs.
struct HypervFeature {
  std::string_view property;            // "hv-synic"
  std::string_view value;               // "" for a plain on/off flag, else "=0x1fff"
  std::vector<std::string_view> needs;  // other properties, hv-time included
};

// The enlightenments of `set` besides hv-time, in the order they are written (each after what
// it requires). QEMU's docs/system/i386/hyperv.rst states the requirements.
std::vector<HypervFeature> HypervFeatures(HypervSet set);

// The policy for `os`, with `overrides` applied on top of the OS defaults.
ClockPolicy MakeClockPolicy(GuestOs os, const ClockOverrides& overrides = {});

// Parsers for override values; each throws UsageError naming `field`, the bad value and the
// valid ones (e.g. "--pit-policy: invalid value 'slew'; valid: delay, discard").
RtcBase ParseRtcBase(std::string_view text, std::string_view field = "rtc_base");
RtcTickPolicy ParseRtcTickPolicy(std::string_view text, std::string_view field = "rtc_policy");
PitTickPolicy ParsePitTickPolicy(std::string_view text, std::string_view field = "pit_policy");
RtcClock ParseRtcClock(std::string_view text, std::string_view field = "rtc_clock");
HypervSet ParseHypervSet(std::string_view text, std::string_view field = "hyperv");
Toggle ParseToggle(std::string_view text, std::string_view field);

// The value of `setting` in `policy` as its user-facing name ("localtime", "slew", "off"...).
std::string_view SettingValue(const ClockPolicy& policy, ClockSetting setting);
const Rationale& SettingRationale(const ClockPolicy& policy, ClockSetting setting);

}  // namespace kvmrun

#endif  // KVMRUN_CLOCK_POLICY_H_

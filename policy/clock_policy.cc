#include "kvmrun/clock_policy.h"

#include <string>

#include "kvmrun/error.h"
#include "policy/names.h"
#include "policy/sources.h"

namespace kvmrun {

std::string_view ToString(RtcBase value) {
  switch (value) {
    case RtcBase::kUtc:
      return "utc";
    case RtcBase::kLocaltime:
      return "localtime";
  }
  return "?";
}

std::string_view ToString(RtcTickPolicy value) {
  switch (value) {
    case RtcTickPolicy::kDiscard:
      return "discard";
    case RtcTickPolicy::kSlew:
      return "slew";
  }
  return "?";
}

std::string_view ToString(PitTickPolicy value) {
  switch (value) {
    case PitTickPolicy::kDelay:
      return "delay";
    case PitTickPolicy::kDiscard:
      return "discard";
  }
  return "?";
}

std::string_view ToString(Toggle value) {
  switch (value) {
    case Toggle::kOff:
      return "off";
    case Toggle::kOn:
      return "on";
  }
  return "?";
}

std::string_view ToString(ClockSetting setting) {
  switch (setting) {
    case ClockSetting::kRtcBase:
      return "rtc-base";
    case ClockSetting::kRtcPolicy:
      return "rtc-policy";
    case ClockSetting::kPitPolicy:
      return "pit-policy";
    case ClockSetting::kHpet:
      return "hpet";
    case ClockSetting::kHvTime:
      return "hv-time";
    case ClockSetting::kKvmclock:
      return "kvmclock";
  }
  return "?";
}

namespace {

Rationale Why(std::string reason, std::string source) {
  return Rationale{std::move(reason), std::move(source), false};
}

// The policy tables. Each decision states why, in a line, and where the reasoning comes from;
// docs/timekeeping.md has the long form.

ClockPolicy WindowsPolicy(GuestOs os) {
  const bool legacy = os == GuestOs::kWindowsXp || os == GuestOs::kWindows2003;
  ClockPolicy p;
  p.os = os;
  p.rtc_base = {RtcBase::kLocaltime,
                Why("Windows keeps the hardware clock in local time", sources::kWindowsLocaltime)};
  p.rtc_policy = {RtcTickPolicy::kSlew,
                  Why("Windows counts RTC interrupts; re-inject those a stalled vCPU missed",
                      legacy ? sources::kProxmoxOldWindows : sources::kNovaBug1011848)};
  // The real decision: the seed (2012) and Proxmox (Vista+) use discard, Nova, virt-install and
  // KubeVirt use delay today, and quickemu saw Windows 11 hang at shutdown with discard.
  p.pit_policy = {PitTickPolicy::kDelay,
                  Why("re-inject missed PIT ticks as Nova and virt-install do; discard made "
                      "Windows 11 slow to shut down",
                      sources::kQuickemu544)};
  p.hpet = {Toggle::kOff,
            Why("Windows prefers an HPET when present and QEMU's HPET has no lost-tick policy",
                sources::kNovaWindows)};
  if (legacy) {
    p.hv_time = {Toggle::kOff,
                 Why("XP and 2003 predate the Hyper-V enlightenments", sources::kQemuHyperv)};
    p.guest_hints.push_back({"/usepmtimer (boot.ini)",
                             Why("use the ACPI PM timer rather than the TSC for the guest's clock",
                                 sources::kRedHatTiming)});
  } else {
    p.hv_time = {Toggle::kOn,
                 Why("Hyper-V reference time: a stable clock that needs no tick counting",
                     sources::kQemuHyperv)};
  }
  p.kvmclock = {Toggle::kOn, Why("Windows does not use kvm-clock; QEMU's default is kept",
                                 sources::kQemuDefaults)};
  return p;
}

ClockPolicy LinuxPolicy() {
  ClockPolicy p;
  p.os = GuestOs::kLinux;
  p.rtc_base = {RtcBase::kUtc,
                Why("Linux keeps the hardware clock in UTC", sources::kNovaBug1011848)};
  p.rtc_policy = {
      RtcTickPolicy::kSlew,
      Why("catch up RTC interrupts lost while the vCPU was not running", sources::kNovaBug1011848)};
  p.pit_policy = {PitTickPolicy::kDiscard,
                  Why("kvm-clock keeps time without counting PIT ticks; re-injection only adds "
                      "bursts (and inhibits AMD AVIC)",
                      sources::kKvmApiReinject)};
  p.hpet = {Toggle::kOff, Why("kvm-clock is the clocksource; an emulated HPET only costs exits",
                              sources::kVirtInstall)};
  p.hv_time = {Toggle::kOff,
               Why("Linux uses kvm-clock, not Hyper-V reference time", sources::kKvmclockLinux)};
  p.kvmclock = {Toggle::kOn, Why("the paravirtual clock Linux >= 2.6.27 prefers; it loses no ticks",
                                 sources::kKvmclockLinux)};
  return p;
}

ClockPolicy LinuxLegacyPolicy() {
  ClockPolicy p = LinuxPolicy();
  p.os = GuestOs::kLinuxLegacy;
  p.pit_policy = {PitTickPolicy::kDelay,
                  Why("the guest keeps time by counting PIT ticks, so missed ticks must be "
                      "re-injected",
                      sources::kKvmApiReinject)};
  p.hpet = {Toggle::kOff,
            Why("keep the tick on the PIT, whose lost ticks KVM re-injects; QEMU's HPET has no "
                "lost-tick policy",
                sources::kRedHatTiming)};
  p.kvmclock = {
      Toggle::kOff,
      Why("no kvm-clock (or an early, drifting one); keep the guest on the re-injected tick",
          sources::kRedHatTiming)};
  p.guest_hints.push_back(
      {"clocksource=acpi_pm (kernel command line)",
       Why("a stable clocksource when the TSC is unreliable", sources::kRedHatTiming)});
  p.guest_hints.push_back(
      {"divider=10 (RHEL 5 kernel command line)",
       Why("lowers a 1000 Hz tick to 100 Hz: fewer ticks to lose", sources::kRedHatTiming)});
  return p;
}

ClockPolicy FreeBsdPolicy() {
  ClockPolicy p;
  p.os = GuestOs::kFreeBsd;
  p.rtc_base = {RtcBase::kUtc,
                Why("FreeBSD keeps the hardware clock in UTC by default", sources::kFreeBsdUtc)};
  p.rtc_policy = {RtcTickPolicy::kSlew,
                  Why("harmless catch-up of RTC interrupts, as virt-install sets for every guest",
                      sources::kVirtInstall)};
  p.pit_policy = {PitTickPolicy::kDiscard,
                  Why("FreeBSD keeps time from a timecounter, not from PIT tick counts",
                      sources::kKvmApiReinject)};
  p.hpet = {Toggle::kOn, Why("FreeBSD uses the HPET as event timer and fallback timecounter",
                             sources::kFreeBsdHpet)};
  p.hv_time = {Toggle::kOff, Why("FreeBSD uses kvm-clock under KVM, not Hyper-V reference time",
                                 sources::kFreeBsdKvmclock)};
  p.kvmclock = {Toggle::kOn,
                Why("FreeBSD >= 13 prefers kvm-clock over the TSC", sources::kFreeBsdKvmclock)};
  return p;
}

ClockPolicy OtherPolicy() {
  const auto why = [] { return Why("unknown guest: QEMU's own default", sources::kQemuDefaults); };
  ClockPolicy p;
  p.os = GuestOs::kOther;
  p.rtc_base = {RtcBase::kUtc, why()};
  p.rtc_policy = {RtcTickPolicy::kDiscard, why()};
  p.pit_policy = {PitTickPolicy::kDelay, why()};
  p.hpet = {Toggle::kOn, why()};
  p.hv_time = {Toggle::kOff, why()};
  p.kvmclock = {Toggle::kOn, why()};
  return p;
}

ClockPolicy DefaultPolicy(GuestOs os) {
  switch (os) {
    case GuestOs::kWindowsXp:
    case GuestOs::kWindows2003:
    case GuestOs::kWindows7:
    case GuestOs::kWindows10:
    case GuestOs::kWindows11:
    case GuestOs::kWindowsServer2016:
    case GuestOs::kWindowsServer2019:
    case GuestOs::kWindowsServer2022:
    case GuestOs::kWindowsServer2025:
      return WindowsPolicy(os);
    case GuestOs::kLinux:
      return LinuxPolicy();
    case GuestOs::kLinuxLegacy:
      return LinuxLegacyPolicy();
    case GuestOs::kFreeBsd:
      return FreeBsdPolicy();
    case GuestOs::kOther:
      return OtherPolicy();
  }
  return OtherPolicy();
}

template <typename T>
void Override(Choice<T>& choice, const std::optional<T>& value, ClockSetting setting) {
  if (!value) return;
  choice.value = *value;
  choice.why = Rationale{"set by override (--" + std::string(ToString(setting)) + ")",
                         "user override", true};
}

}  // namespace

ClockPolicy MakeClockPolicy(GuestOs os, const ClockOverrides& overrides) {
  ClockPolicy policy = DefaultPolicy(os);
  Override(policy.rtc_base, overrides.rtc_base, ClockSetting::kRtcBase);
  Override(policy.rtc_policy, overrides.rtc_policy, ClockSetting::kRtcPolicy);
  Override(policy.pit_policy, overrides.pit_policy, ClockSetting::kPitPolicy);
  Override(policy.hpet, overrides.hpet, ClockSetting::kHpet);
  Override(policy.hv_time, overrides.hv_time, ClockSetting::kHvTime);
  Override(policy.kvmclock, overrides.kvmclock, ClockSetting::kKvmclock);
  return policy;
}

RtcBase ParseRtcBase(std::string_view text, std::string_view option) {
  return ParseName(text, option, kAllRtcBases);
}
RtcTickPolicy ParseRtcTickPolicy(std::string_view text, std::string_view option) {
  return ParseName(text, option, kAllRtcTickPolicies);
}
PitTickPolicy ParsePitTickPolicy(std::string_view text, std::string_view option) {
  return ParseName(text, option, kAllPitTickPolicies);
}
Toggle ParseToggle(std::string_view text, std::string_view option) {
  return ParseName(text, option, kAllToggles);
}

std::string_view SettingValue(const ClockPolicy& policy, ClockSetting setting) {
  switch (setting) {
    case ClockSetting::kRtcBase:
      return ToString(policy.rtc_base.value);
    case ClockSetting::kRtcPolicy:
      return ToString(policy.rtc_policy.value);
    case ClockSetting::kPitPolicy:
      return ToString(policy.pit_policy.value);
    case ClockSetting::kHpet:
      return ToString(policy.hpet.value);
    case ClockSetting::kHvTime:
      return ToString(policy.hv_time.value);
    case ClockSetting::kKvmclock:
      return ToString(policy.kvmclock.value);
  }
  return "?";
}

const Rationale& SettingRationale(const ClockPolicy& policy, ClockSetting setting) {
  switch (setting) {
    case ClockSetting::kRtcBase:
      return policy.rtc_base.why;
    case ClockSetting::kRtcPolicy:
      return policy.rtc_policy.why;
    case ClockSetting::kPitPolicy:
      return policy.pit_policy.why;
    case ClockSetting::kHpet:
      return policy.hpet.why;
    case ClockSetting::kHvTime:
      return policy.hv_time.why;
    case ClockSetting::kKvmclock:
      return policy.kvmclock.why;
  }
  return policy.rtc_base.why;
}

}  // namespace kvmrun

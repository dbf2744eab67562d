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
    case ClockSetting::kRtcClock:
      return "rtc-clock";
    case ClockSetting::kPitPolicy:
      return "pit-policy";
    case ClockSetting::kHpet:
      return "hpet";
    case ClockSetting::kHvTime:
      return "hv-time";
    case ClockSetting::kHyperv:
      return "hyperv";
    case ClockSetting::kKvmclock:
      return "kvmclock";
  }
  return "?";
}

std::string_view ToString(RtcClock value) {
  switch (value) {
    case RtcClock::kHost:
      return "host";
    case RtcClock::kRt:
      return "rt";
    case RtcClock::kVm:
      return "vm";
  }
  return "?";
}

std::string_view ToString(HypervSet value) {
  switch (value) {
    case HypervSet::kOff:
      return "off";
    case HypervSet::kVista:
      return "vista";
    case HypervSet::kFull:
      return "full";
  }
  return "?";
}

std::vector<HypervFeature> HypervFeatures(HypervSet set) {
  // The rule: an enlightenment that at least two of virt-install, Nova and Proxmox give Windows,
  // leaving out those that depend on the host's hardware (hv-evmcs: Intel, nested only; hv-avic:
  // APICv/AVIC). Proxmox alone splits by Windows version: synic, stimer and ipi from Windows 7.
  std::vector<HypervFeature> features = {
      {"hv-relaxed", "", {}},          {"hv-vapic", "", {}},
      {"hv-spinlocks", "=0x1fff", {}}, {"hv-vpindex", "", {}},
      {"hv-runtime", "", {}},          {"hv-reset", "", {}},
      {"hv-frequencies", "", {}},      {"hv-tlbflush", "", {"hv-vpindex"}},
  };
  switch (set) {
    case HypervSet::kOff:
      return {};
    case HypervSet::kVista:
      return features;
    case HypervSet::kFull:
      features.push_back({"hv-synic", "", {"hv-vpindex"}});
      features.push_back({"hv-stimer", "", {"hv-vpindex", "hv-synic", "hv-time"}});
      features.push_back({"hv-ipi", "", {"hv-vpindex"}});
      return features;
  }
  return {};
}

namespace {

Rationale Why(std::string reason, std::string source) {
  return Rationale{std::move(reason), std::move(source), false};
}

Choice<RtcClock> HostRtcClock() {
  return {RtcClock::kHost, Why("QEMU's default: the RTC follows the host's wall clock, so the "
                               "guest boots with the host's time",
                               sources::kQemuRtc)};
}

// The policy tables. Each decision states why, in a line, and where the reasoning comes from;
// docs/timekeeping.md has the long form and the trade-offs.

ClockPolicy WindowsPolicy(GuestOs os) {
  const bool pre_vista = os == GuestOs::kWindowsXp || os == GuestOs::kWindows2003;
  ClockPolicy p;
  p.os = os;
  p.rtc_base = {RtcBase::kLocaltime,
                Why("Windows keeps the hardware clock in local time", sources::kWindowsLocaltime)};
  p.rtc_policy = {RtcTickPolicy::kSlew,
                  Why("Windows counts RTC interrupts; re-inject those a stalled vCPU missed",
                      sources::kProxmoxTimer)};
  p.rtc_clock = HostRtcClock();
  p.hpet = {Toggle::kOff,
            Why("Windows prefers an HPET when present and QEMU's HPET has no lost-tick policy",
                sources::kNovaWindowsClock)};
  p.kvmclock = {Toggle::kOn, Why("Windows does not use kvm-clock; QEMU's default is left alone",
                                 sources::kQemuDefaults)};
  if (pre_vista) {
    p.pit_policy = {PitTickPolicy::kDelay,
                    Why("no Hyper-V clock: XP and 2003 count timer interrupts, so missed PIT "
                        "ticks are re-injected (QEMU's default, kept by Proxmox)",
                        sources::kProxmoxTimer)};
    p.hv_time = {Toggle::kOff, Why("XP and 2003 predate the Hyper-V enlightenments (Proxmox "
                                   "gives them none)",
                                   sources::kProxmoxHyperv)};
    p.hyperv = {HypervSet::kOff, Why("XP and 2003 predate the Hyper-V enlightenments (Proxmox "
                                     "gives them none)",
                                     sources::kProxmoxHyperv)};
    p.guest_hints.push_back({"/usepmtimer (boot.ini)",
                             Why("use the ACPI PM timer rather than the TSC for the guest's clock",
                                 sources::kRedHatBootIni)});
    return p;
  }
  p.pit_policy = {PitTickPolicy::kDiscard,
                  Why("Vista and later keep time from the Hyper-V clocks, not from PIT ticks: no "
                      "catch-up bursts (Proxmox; what Nova and virt-install meant by 'delay')",
                      sources::kProxmoxTimer)};
  p.hv_time = {Toggle::kOn,
               Why("the Hyper-V reference counter and TSC page: a stable clock that needs no tick "
                   "counting",
                   sources::kQemuHypervTime)};
  if (os == GuestOs::kWindowsVista) {
    p.hyperv = {HypervSet::kVista,
                Why("the enlightenments Vista and Server 2008 use; synic, stimer and ipi came "
                    "with Windows 7",
                    sources::kProxmoxHyperv)};
  } else {
    p.hyperv = {HypervSet::kFull,
                Why("the set virt-install, Nova and Proxmox agree on; hv-stimer keeps Windows off "
                    "the HPET and RTC for its timers",
                    sources::kQemuHypervStimer)};
  }
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
  p.rtc_clock = HostRtcClock();
  p.pit_policy = {PitTickPolicy::kDiscard,
                  Why("kvm-clock keeps time without counting PIT ticks; re-injection only adds "
                      "bursts (and inhibits AMD AVIC)",
                      sources::kKvmApiReinject)};
  p.hpet = {Toggle::kOff, Why("kvm-clock is the clocksource; an emulated HPET only costs exits",
                              sources::kVirtInstallClock)};
  p.hv_time = {Toggle::kOff,
               Why("Linux uses kvm-clock, not Hyper-V reference time", sources::kKvmclockLinux)};
  p.hyperv = {HypervSet::kOff, Why("the Hyper-V enlightenments are for Windows; Linux uses KVM's "
                                   "own paravirtual interfaces",
                                   sources::kVirtInstallHyperv)};
  p.kvmclock = {Toggle::kOn, Why("the paravirtual clock Linux >= 2.6.26 prefers; it loses no ticks",
                                 sources::kKvmclockLinux)};
  return p;
}

ClockPolicy LinuxLegacyPolicy(GuestOs os) {
  ClockPolicy p = LinuxPolicy();
  p.os = os;
  p.pit_policy = {PitTickPolicy::kDelay,
                  Why("the guest keeps time by counting PIT ticks, so missed ticks must be "
                      "re-injected",
                      sources::kKvmApiReinject)};
  p.hpet = {Toggle::kOff,
            Why("keep the tick on the PIT, whose lost ticks KVM re-injects; QEMU's HPET has no "
                "lost-tick policy",
                sources::kVirtInstallClock)};
  p.kvmclock = {Toggle::kOff,
                Why("no kvm-clock before RHEL 5.5 (or an early one): keep the guest on the "
                    "re-injected tick; from 5.5 on, use 'linux'",
                    sources::kRedHatKvmclockDefault)};
  if (os == GuestOs::kLinuxLegacy64) {
    p.guest_hints.push_back(
        {"notsc (kernel command line)",
         Why("Red Hat's setting for 64-bit guests without kvm-clock: keep the clock off the TSC",
             sources::kRedHatGuestParameters)});
  } else {
    p.guest_hints.push_back(
        {"clocksource=acpi_pm (kernel command line; clock=pmtmr on RHEL 4)",
         Why("Red Hat's setting for 32-bit guests without kvm-clock: the ACPI PM timer, not the "
             "TSC",
             sources::kRedHatGuestParameters)});
  }
  p.guest_hints.push_back(
      {"no divider= before RHEL 5.8",
       Why("once advised to cut the tick rate, it can panic RHEL 4 and RHEL 5 before 5.8",
           sources::kRedHatGuestParameters)});
  return p;
}

ClockPolicy FreeBsdPolicy() {
  ClockPolicy p;
  p.os = GuestOs::kFreeBsd;
  p.rtc_base = {RtcBase::kUtc,
                Why("FreeBSD keeps the hardware clock in UTC by default", sources::kFreeBsdUtc)};
  p.rtc_policy = {RtcTickPolicy::kSlew,
                  Why("harmless catch-up of RTC interrupts, as virt-install sets for every guest",
                      sources::kVirtInstallClock)};
  p.rtc_clock = HostRtcClock();
  p.pit_policy = {PitTickPolicy::kDiscard,
                  Why("FreeBSD keeps time from a timecounter, not from PIT tick counts",
                      sources::kKvmApiReinject)};
  p.hpet = {Toggle::kOff,
            Why("FreeBSD takes the LAPIC as event timer and kvm-clock as timecounter; the HPET "
                "is only a fallback (virt-install and Nova turn it off for every guest)",
                sources::kFreeBsdEventtimers)};
  p.hv_time = {Toggle::kOff, Why("FreeBSD uses kvm-clock under KVM, not Hyper-V reference time",
                                 sources::kFreeBsdKvmclock)};
  p.hyperv = {HypervSet::kOff,
              Why("the Hyper-V enlightenments are for Windows", sources::kVirtInstallHyperv)};
  p.kvmclock = {Toggle::kOn, Why("FreeBSD prefers kvm-clock over the TSC when present",
                                 sources::kFreeBsdKvmclock)};
  return p;
}

ClockPolicy OtherPolicy() {
  const auto why = [] { return Why("unknown guest: QEMU's own default", sources::kQemuDefaults); };
  ClockPolicy p;
  p.os = GuestOs::kOther;
  p.rtc_base = {RtcBase::kUtc, why()};
  p.rtc_policy = {RtcTickPolicy::kDiscard, why()};
  p.rtc_clock = {RtcClock::kHost, why()};
  p.pit_policy = {PitTickPolicy::kDelay, why()};
  p.hpet = {Toggle::kOn, why()};
  p.hv_time = {Toggle::kOff, why()};
  p.hyperv = {HypervSet::kOff, why()};
  p.kvmclock = {Toggle::kOn, why()};
  return p;
}

ClockPolicy DefaultPolicy(GuestOs os) {
  switch (Describe(os).family) {
    case GuestFamily::kWindows:
      return WindowsPolicy(os);
    case GuestFamily::kLinux:
      return os == GuestOs::kLinux ? LinuxPolicy() : LinuxLegacyPolicy(os);
    case GuestFamily::kBsd:
      return FreeBsdPolicy();
    case GuestFamily::kOther:
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

// Calls f(a.x, b.x) for every per-timer setting x that both have (ClockOverrides' optionals,
// ClockPolicy's choices): the one list of them for the functions below.
template <typename A, typename B, typename F>
void ForEachSetting(A& a, B& b, F f) {
  f(a.rtc_base, b.rtc_base);
  f(a.rtc_policy, b.rtc_policy);
  f(a.rtc_clock, b.rtc_clock);
  f(a.pit_policy, b.pit_policy);
  f(a.hpet, b.hpet);
  f(a.hv_time, b.hv_time);
  f(a.hyperv, b.hyperv);
  f(a.kvmclock, b.kvmclock);
}

}  // namespace

ClockOverrides OverridesOf(const ClockPolicy& policy) {
  ClockOverrides o;
  ForEachSetting(o, policy, [](auto& out, const auto& choice) {
    if (choice.why.overridden) out = choice.value;
  });
  return o;
}

ClockOverrides MergeOverrides(ClockOverrides base, const ClockOverrides& over) {
  ForEachSetting(base, over, [](auto& into, const auto& from) {
    if (from) into = from;
  });
  return base;
}

std::string OverridesText(const ClockOverrides& overrides) {
  const ClockPolicy policy = MakeClockPolicy(GuestOs::kOther, overrides);
  std::string text;
  for (ClockSetting setting : kAllClockSettings) {
    if (!SettingRationale(policy, setting).overridden) continue;
    text += (text.empty() ? "" : ", ") + std::string(ToString(setting)) + "=" +
            std::string(SettingValue(policy, setting));
  }
  return text;
}

ClockPolicy MakeClockPolicy(GuestOs os, const ClockOverrides& overrides) {
  ClockPolicy policy = DefaultPolicy(os);
  Override(policy.rtc_base, overrides.rtc_base, ClockSetting::kRtcBase);
  Override(policy.rtc_policy, overrides.rtc_policy, ClockSetting::kRtcPolicy);
  Override(policy.rtc_clock, overrides.rtc_clock, ClockSetting::kRtcClock);
  Override(policy.pit_policy, overrides.pit_policy, ClockSetting::kPitPolicy);
  Override(policy.hpet, overrides.hpet, ClockSetting::kHpet);
  Override(policy.hv_time, overrides.hv_time, ClockSetting::kHvTime);
  Override(policy.hyperv, overrides.hyperv, ClockSetting::kHyperv);
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
RtcClock ParseRtcClock(std::string_view text, std::string_view option) {
  return ParseName(text, option, kAllRtcClocks);
}
HypervSet ParseHypervSet(std::string_view text, std::string_view option) {
  return ParseName(text, option, kAllHypervSets);
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
    case ClockSetting::kRtcClock:
      return ToString(policy.rtc_clock.value);
    case ClockSetting::kPitPolicy:
      return ToString(policy.pit_policy.value);
    case ClockSetting::kHpet:
      return ToString(policy.hpet.value);
    case ClockSetting::kHvTime:
      return ToString(policy.hv_time.value);
    case ClockSetting::kHyperv:
      return ToString(policy.hyperv.value);
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
    case ClockSetting::kRtcClock:
      return policy.rtc_clock.why;
    case ClockSetting::kPitPolicy:
      return policy.pit_policy.why;
    case ClockSetting::kHpet:
      return policy.hpet.why;
    case ClockSetting::kHvTime:
      return policy.hv_time.why;
    case ClockSetting::kHyperv:
      return policy.hyperv.why;
    case ClockSetting::kKvmclock:
      return policy.kvmclock.why;
  }
  return policy.rtc_base.why;
}

}  // namespace kvmrun

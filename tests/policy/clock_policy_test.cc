#include "kvmrun/clock_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>

#include "kvmrun/error.h"
#include "kvmrun/guest_os.h"

namespace kvmrun {
namespace {

TEST(ClockPolicyTest, ModernLinuxGetsTheSeedPair) {
  const ClockPolicy p = MakeClockPolicy(GuestOs::kLinux);
  EXPECT_EQ(p.rtc_base.value, RtcBase::kUtc);
  EXPECT_EQ(p.rtc_policy.value, RtcTickPolicy::kSlew);
  EXPECT_EQ(p.pit_policy.value, PitTickPolicy::kDiscard);
  EXPECT_EQ(p.kvmclock.value, Toggle::kOn);
  EXPECT_EQ(p.hv_time.value, Toggle::kOff);
  EXPECT_NE(p.rtc_policy.why.source.find("1011848"), std::string::npos);
  EXPECT_TRUE(p.guest_hints.empty());
}

TEST(ClockPolicyTest, LegacyLinuxReinjectsPitTicksAndDropsKvmclock) {
  for (GuestOs os : {GuestOs::kLinuxLegacy, GuestOs::kLinuxLegacy64}) {
    const ClockPolicy p = MakeClockPolicy(os);
    EXPECT_EQ(p.pit_policy.value, PitTickPolicy::kDelay);
    EXPECT_EQ(p.kvmclock.value, Toggle::kOff);
    EXPECT_EQ(p.hpet.value, Toggle::kOff);
    ASSERT_EQ(p.guest_hints.size(), 2u);
    // Red Hat's table splits the clocksource advice by word size; divider= is a warning.
    EXPECT_NE(p.guest_hints[0].setting.find(os == GuestOs::kLinuxLegacy ? "clocksource=acpi_pm"
                                                                        : "notsc"),
              std::string::npos);
    EXPECT_NE(p.guest_hints[1].why.reason.find("panic"), std::string::npos);
  }
}

TEST(ClockPolicyTest, Rhel5IsModernLinuxBecause55AndLaterUseKvmclock) {
  EXPECT_EQ(FindGuestOs("rhel5"), GuestOs::kLinux);
  EXPECT_EQ(FindGuestOs("rhel5.4"), GuestOs::kLinuxLegacy);
  EXPECT_EQ(FindGuestOs("rhel5.4-64"), GuestOs::kLinuxLegacy64);
}

TEST(ClockPolicyTest, VistaAndLaterWindowsDiscardPitTicksAndGetHyperv) {
  for (const GuestOsInfo& info : GuestOsCatalog()) {
    if (info.family != GuestFamily::kWindows || info.os == GuestOs::kWindowsXp ||
        info.os == GuestOs::kWindows2003) {
      continue;
    }
    const ClockPolicy p = MakeClockPolicy(info.os);
    SCOPED_TRACE(std::string(info.name));
    EXPECT_EQ(p.rtc_base.value, RtcBase::kLocaltime);
    EXPECT_EQ(p.rtc_policy.value, RtcTickPolicy::kSlew);
    EXPECT_EQ(p.pit_policy.value, PitTickPolicy::kDiscard);
    EXPECT_EQ(p.hpet.value, Toggle::kOff);
    EXPECT_EQ(p.hv_time.value, Toggle::kOn);
    EXPECT_EQ(p.hyperv.value,
              info.os == GuestOs::kWindowsVista ? HypervSet::kVista : HypervSet::kFull);
    EXPECT_TRUE(p.guest_hints.empty());
  }
}

TEST(ClockPolicyTest, OldWindowsReinjectsPitTicksHasNoHypervButAPmTimerHint) {
  for (GuestOs os : {GuestOs::kWindowsXp, GuestOs::kWindows2003}) {
    const ClockPolicy p = MakeClockPolicy(os);
    EXPECT_EQ(p.pit_policy.value, PitTickPolicy::kDelay);
    EXPECT_EQ(p.hv_time.value, Toggle::kOff);
    EXPECT_EQ(p.hyperv.value, HypervSet::kOff);
    ASSERT_EQ(p.guest_hints.size(), 1u);
    EXPECT_EQ(p.guest_hints[0].setting, "/usepmtimer (boot.ini)");
  }
}

TEST(ClockPolicyTest, HypervSetsListEachFeatureAfterWhatItNeeds) {
  const std::vector<HypervFeature> vista = HypervFeatures(HypervSet::kVista);
  const std::vector<HypervFeature> full = HypervFeatures(HypervSet::kFull);
  EXPECT_TRUE(HypervFeatures(HypervSet::kOff).empty());
  ASSERT_LT(vista.size(), full.size());
  for (std::size_t i = 0; i < vista.size(); ++i) EXPECT_EQ(vista[i].property, full[i].property);
  std::vector<std::string_view> seen = {"hv-time"};
  for (const HypervFeature& f : full) {
    for (std::string_view need : f.needs) {
      EXPECT_NE(std::find(seen.begin(), seen.end(), need), seen.end())
          << f.property << " needs " << need << " listed before it";
    }
    seen.push_back(f.property);
  }
  // The Windows 7 additions (Proxmox's split) and hyperv.rst's stated requirements.
  const auto find = [&](std::string_view name) {
    return std::find_if(full.begin(), full.end(),
                        [&](const HypervFeature& f) { return f.property == name; });
  };
  ASSERT_NE(find("hv-stimer"), full.end());
  EXPECT_EQ(find("hv-stimer")->needs,
            (std::vector<std::string_view>{"hv-vpindex", "hv-synic", "hv-time"}));
  EXPECT_EQ(find("hv-synic")->needs, (std::vector<std::string_view>{"hv-vpindex"}));
  for (std::string_view added : {"hv-synic", "hv-stimer", "hv-ipi"}) {
    EXPECT_TRUE(std::none_of(vista.begin(), vista.end(), [&](const HypervFeature& f) {
      return f.property == added;
    })) << added;
  }
}

TEST(ClockPolicyTest, OtherIsExactlyQemusDefaults) {
  const ClockPolicy p = MakeClockPolicy(GuestOs::kOther);
  EXPECT_EQ(p.rtc_base.value, RtcBase::kUtc);
  EXPECT_EQ(p.rtc_policy.value, RtcTickPolicy::kDiscard);
  EXPECT_EQ(p.pit_policy.value, PitTickPolicy::kDelay);
  EXPECT_EQ(p.hpet.value, Toggle::kOn);
  EXPECT_EQ(p.hv_time.value, Toggle::kOff);
  EXPECT_EQ(p.hyperv.value, HypervSet::kOff);
  EXPECT_EQ(p.rtc_clock.value, RtcClock::kHost);
  EXPECT_EQ(p.kvmclock.value, Toggle::kOn);
}

TEST(ClockPolicyTest, EveryDecisionOfEveryOsHasAReasonAndASource) {
  for (const GuestOsInfo& info : GuestOsCatalog()) {
    const ClockPolicy p = MakeClockPolicy(info.os);
    EXPECT_EQ(p.os, info.os);
    for (ClockSetting setting : kAllClockSettings) {
      const Rationale& why = SettingRationale(p, setting);
      EXPECT_FALSE(why.reason.empty()) << info.name << " " << ToString(setting);
      EXPECT_FALSE(why.source.empty()) << info.name << " " << ToString(setting);
      EXPECT_FALSE(why.overridden);
      EXPECT_EQ(why.reason.find('\n'), std::string::npos) << "one line";
    }
  }
}

// Every source a policy cites must be something a reader can open: a URL, or a file of a named
// project and the place in it; and no two claims may share a vague catch-all.
TEST(ClockPolicyTest, EverySourceIsAUrlOrAFileAndPlaceAndDistinctPerClaim) {
  const std::regex url(R"(^https://\S+.* \(.+\)$)");
  const std::regex file(R"(^.*\b[\w/.-]+\.(py|pm|c|rst)\b.*\(.+\)$)");
  std::map<std::string, std::set<std::string>> claims_by_source;
  const auto check = [&](const Rationale& why, const std::string& where) {
    EXPECT_TRUE(std::regex_match(why.source, url) || std::regex_match(why.source, file))
        << where << ": " << why.source;
    claims_by_source[why.source].insert(why.reason);
  };
  for (const GuestOsInfo& info : GuestOsCatalog()) {
    const ClockPolicy p = MakeClockPolicy(info.os);
    for (ClockSetting setting : kAllClockSettings) {
      check(SettingRationale(p, setting),
            std::string(info.name) + " " + std::string(ToString(setting)));
    }
    for (const GuestHint& hint : p.guest_hints) check(hint.why, hint.setting);
  }
  // Distinct sources name what they back in their own words (the parenthesis), so a source's
  // gloss is never the same as another's.
  std::set<std::string> glosses;
  for (const auto& [source, claims] : claims_by_source) {
    EXPECT_TRUE(glosses.insert(source.substr(source.find('('))).second) << source;
  }
  EXPECT_GE(claims_by_source.size(), 15u);
}

TEST(ClockPolicyTest, OverridesWinAndAreMarked) {
  ClockOverrides o;
  o.pit_policy = PitTickPolicy::kDelay;
  o.rtc_base = RtcBase::kLocaltime;
  o.hpet = Toggle::kOn;
  const ClockPolicy p = MakeClockPolicy(GuestOs::kLinux, o);
  EXPECT_EQ(p.pit_policy.value, PitTickPolicy::kDelay);
  EXPECT_TRUE(p.pit_policy.why.overridden);
  EXPECT_EQ(p.pit_policy.why.reason, "set by override (--pit-policy)");
  EXPECT_EQ(p.rtc_base.value, RtcBase::kLocaltime);
  EXPECT_EQ(p.hpet.value, Toggle::kOn);
  // Settings without an override keep the OS default and its reason.
  EXPECT_EQ(p.rtc_policy.value, RtcTickPolicy::kSlew);
  EXPECT_FALSE(p.rtc_policy.why.overridden);
}

TEST(ClockPolicyTest, SettingValueNamesMatchTheParsers) {
  const ClockPolicy p = MakeClockPolicy(GuestOs::kWindows11);
  EXPECT_EQ(SettingValue(p, ClockSetting::kRtcBase), "localtime");
  EXPECT_EQ(SettingValue(p, ClockSetting::kRtcPolicy), "slew");
  EXPECT_EQ(SettingValue(p, ClockSetting::kRtcClock), "host");
  EXPECT_EQ(SettingValue(p, ClockSetting::kPitPolicy), "discard");
  EXPECT_EQ(SettingValue(p, ClockSetting::kHpet), "off");
  EXPECT_EQ(SettingValue(p, ClockSetting::kHvTime), "on");
  EXPECT_EQ(SettingValue(p, ClockSetting::kHyperv), "full");
  EXPECT_EQ(ParseRtcClock("RT"), RtcClock::kRt);
  EXPECT_EQ(ParseHypervSet("vista"), HypervSet::kVista);
  EXPECT_EQ(ParseRtcBase("LocalTime"), RtcBase::kLocaltime);
  EXPECT_EQ(ParseRtcTickPolicy("slew"), RtcTickPolicy::kSlew);
  EXPECT_EQ(ParsePitTickPolicy("DISCARD"), PitTickPolicy::kDiscard);
  EXPECT_EQ(ParseToggle("On", "--hpet"), Toggle::kOn);
}

TEST(ClockPolicyTest, BadOverrideValuesNameTheOptionTheValueAndTheValidOnes) {
  struct Case {
    std::function<void()> parse;
    std::string expected;
  };
  const Case cases[] = {
      {[] { ParsePitTickPolicy("slew"); },
       "pit_policy: invalid value 'slew'; valid: delay, discard"},
      {[] { ParseRtcTickPolicy("catchup"); },
       "rtc_policy: invalid value 'catchup'; valid: discard, slew"},
      {[] { ParseRtcBase("gmt"); }, "rtc_base: invalid value 'gmt'; valid: utc, localtime"},
      {[] { ParseToggle("yes", "hpet"); }, "hpet: invalid value 'yes'; valid: off, on"},
      {[] { ParseToggle("", "kvmclock"); }, "kvmclock: invalid value ''; valid: off, on"},
      {[] { ParseRtcClock("utc", "rtc-clock"); },
       "rtc-clock: invalid value 'utc'; valid: host, rt, vm"},
      {[] { ParseHypervSet("all", "hyperv"); },
       "hyperv: invalid value 'all'; valid: off, vista, full"},
  };
  for (const Case& c : cases) {
    try {
      c.parse();
      ADD_FAILURE() << "no error for: " << c.expected;
    } catch (const UsageError& e) {
      EXPECT_EQ(e.what(), c.expected);
    }
  }
}

}  // namespace
}  // namespace kvmrun

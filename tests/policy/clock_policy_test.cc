#include "kvmrun/clock_policy.h"

#include <gtest/gtest.h>

#include "kvmrun/error.h"

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
  const ClockPolicy p = MakeClockPolicy(GuestOs::kLinuxLegacy);
  EXPECT_EQ(p.pit_policy.value, PitTickPolicy::kDelay);
  EXPECT_EQ(p.kvmclock.value, Toggle::kOff);
  EXPECT_EQ(p.hpet.value, Toggle::kOff);
  ASSERT_FALSE(p.guest_hints.empty());
  EXPECT_NE(p.guest_hints[0].setting.find("clocksource=acpi_pm"), std::string::npos);
}

TEST(ClockPolicyTest, ModernWindowsUsesLocaltimeSlewDelayNoHpetAndHypervClock) {
  for (GuestOs os :
       {GuestOs::kWindows7, GuestOs::kWindows10, GuestOs::kWindows11, GuestOs::kWindowsServer2016,
        GuestOs::kWindowsServer2019, GuestOs::kWindowsServer2022, GuestOs::kWindowsServer2025}) {
    const ClockPolicy p = MakeClockPolicy(os);
    SCOPED_TRACE(std::string(ToString(os)));
    EXPECT_EQ(p.rtc_base.value, RtcBase::kLocaltime);
    EXPECT_EQ(p.rtc_policy.value, RtcTickPolicy::kSlew);
    EXPECT_EQ(p.pit_policy.value, PitTickPolicy::kDelay);
    EXPECT_EQ(p.hpet.value, Toggle::kOff);
    EXPECT_EQ(p.hv_time.value, Toggle::kOn);
    EXPECT_TRUE(p.guest_hints.empty());
  }
}

TEST(ClockPolicyTest, OldWindowsHasNoHypervClockButAPmTimerHint) {
  for (GuestOs os : {GuestOs::kWindowsXp, GuestOs::kWindows2003}) {
    const ClockPolicy p = MakeClockPolicy(os);
    EXPECT_EQ(p.hv_time.value, Toggle::kOff);
    ASSERT_EQ(p.guest_hints.size(), 1u);
    EXPECT_EQ(p.guest_hints[0].setting, "/usepmtimer (boot.ini)");
  }
}

TEST(ClockPolicyTest, OtherIsExactlyQemusDefaults) {
  const ClockPolicy p = MakeClockPolicy(GuestOs::kOther);
  EXPECT_EQ(p.rtc_base.value, RtcBase::kUtc);
  EXPECT_EQ(p.rtc_policy.value, RtcTickPolicy::kDiscard);
  EXPECT_EQ(p.pit_policy.value, PitTickPolicy::kDelay);
  EXPECT_EQ(p.hpet.value, Toggle::kOn);
  EXPECT_EQ(p.hv_time.value, Toggle::kOff);
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
  EXPECT_EQ(SettingValue(p, ClockSetting::kPitPolicy), "delay");
  EXPECT_EQ(SettingValue(p, ClockSetting::kHpet), "off");
  EXPECT_EQ(SettingValue(p, ClockSetting::kHvTime), "on");
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

#include "kvmrun/policy_format.h"

#include <gtest/gtest.h>

#include "kvmrun/error.h"

namespace kvmrun {
namespace {

TEST(ShellQuoteTest, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(ShellQuote("-rtc"), "-rtc");
  EXPECT_EQ(ShellQuote("base=utc,driftfix=slew"), "base=utc,driftfix=slew");
  EXPECT_EQ(ShellQuote(""), "''");
  EXPECT_EQ(ShellQuote("a b"), "'a b'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  EXPECT_EQ(ShellQuote("$HOME"), "'$HOME'");
  EXPECT_EQ(ShellQuote("a\nb"), "'a\nb'");
  EXPECT_EQ(ShellJoin({"-append", "console=ttyS0 quiet", "-m", "256"}),
            "-append 'console=ttyS0 quiet' -m 256");
}

TEST(PolicyJsonTest, RoundTripsForEveryOs) {
  for (const GuestOsInfo& info : GuestOsCatalog()) {
    const ClockPolicy p = MakeClockPolicy(info.os);
    const nlohmann::json j = ClockPolicyToJson(p);
    EXPECT_EQ(ClockPolicyFromJson(j), p) << info.name;
    EXPECT_EQ(ClockPolicyToJson(ClockPolicyFromJson(nlohmann::json::parse(j.dump()))), j);
  }
}

TEST(PolicyJsonTest, RoundTripKeepsOverrides) {
  ClockOverrides o;
  o.hv_time = Toggle::kOff;
  const ClockPolicy p = MakeClockPolicy(GuestOs::kWindows10, o);
  const ClockPolicy back = ClockPolicyFromJson(ClockPolicyToJson(p));
  EXPECT_EQ(back, p);
  EXPECT_TRUE(back.hv_time.why.overridden);
}

TEST(PolicyJsonTest, CarriesValuesReasonsAndSources) {
  const nlohmann::json j = ClockPolicyToJson(MakeClockPolicy(GuestOs::kLinux));
  EXPECT_EQ(j["os"], "linux");
  EXPECT_EQ(j["settings"]["pit-policy"]["value"], "discard");
  EXPECT_EQ(j["settings"]["rtc-policy"]["value"], "slew");
  EXPECT_FALSE(j["settings"]["pit-policy"]["reason"].get<std::string>().empty());
  EXPECT_FALSE(j["settings"]["pit-policy"]["source"].get<std::string>().empty());
}

TEST(PolicyJsonTest, BadJsonIsAUsageErrorNamingTheProblem) {
  nlohmann::json j = ClockPolicyToJson(MakeClockPolicy(GuestOs::kLinux));
  j["settings"]["pit-policy"]["value"] = "slew";
  try {
    ClockPolicyFromJson(j);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "policy JSON 'pit-policy': invalid value 'slew'; valid: delay, discard");
  }
  j = ClockPolicyToJson(MakeClockPolicy(GuestOs::kLinux));
  j["settings"].erase("hpet");
  EXPECT_THROW(ClockPolicyFromJson(j), UsageError);
  EXPECT_THROW(ClockPolicyFromJson(nlohmann::json::array()), UsageError);
  EXPECT_THROW(ClockPolicyFromJson({{"os", "beos"}, {"settings", nlohmann::json::object()}}),
               UsageError);
}

TEST(LibvirtXmlTest, LinuxUsesTodaysLibvirtNames) {
  EXPECT_EQ(LibvirtClockXml(MakeClockPolicy(GuestOs::kLinux)),
            "<clock offset='utc'>\n"
            "  <timer name='rtc' tickpolicy='catchup'/>\n"
            "  <timer name='pit' tickpolicy='discard'/>\n"
            "  <timer name='hpet' present='no'/>\n"
            "  <timer name='kvmclock' present='yes'/>\n"
            "  <timer name='hypervclock' present='no'/>\n"
            "</clock>\n");
}

TEST(LibvirtXmlTest, WindowsAndQemuDefaults) {
  const std::string win = LibvirtClockXml(MakeClockPolicy(GuestOs::kWindows11));
  EXPECT_NE(win.find("<clock offset='localtime'>"), std::string::npos);
  EXPECT_NE(win.find("<timer name='pit' tickpolicy='discard'/>"), std::string::npos);
  EXPECT_NE(win.find("<timer name='hypervclock' present='yes'/>"), std::string::npos);
  EXPECT_NE(LibvirtClockXml(MakeClockPolicy(GuestOs::kWindowsXp))
                .find("<timer name='pit' tickpolicy='delay'/>"),
            std::string::npos);
  // QEMU's RTC discard is libvirt's rtc 'delay'; libvirt rejects rtc 'discard'.
  const std::string other = LibvirtClockXml(MakeClockPolicy(GuestOs::kOther));
  EXPECT_NE(other.find("<timer name='rtc' tickpolicy='delay'/>"), std::string::npos);
  EXPECT_EQ(other.find("tickpolicy='discard'/>\n  <timer name='hpet'"), std::string::npos);
}

TEST(LibvirtXmlTest, HypervSetAsFeaturesLessWhatNeedsAnAbsentClock) {
  EXPECT_EQ(LibvirtFeaturesXml(MakeClockPolicy(GuestOs::kLinux)), "");
  const std::string win = LibvirtFeaturesXml(MakeClockPolicy(GuestOs::kWindows11));
  EXPECT_EQ(win.rfind("<features>\n  <hyperv mode='custom'>\n", 0), 0u);
  EXPECT_NE(win.find("    <spinlocks state='on' retries='8191'/>\n"), std::string::npos);
  for (const HypervFeature& f : HypervFeatures(HypervSet::kFull)) {
    if (f.property == "hv-spinlocks") continue;
    std::string element(f.property.substr(3));  // "synic"; appended, not "<" + ...: GCC 12
    element.append(" state='on'/>");            // -O3 reports a false -Wrestrict (bug 105329)
    EXPECT_NE(win.find(element), std::string::npos) << f.property;
  }
  ClockOverrides no_clock;
  no_clock.hv_time = Toggle::kOff;
  const std::string without = LibvirtFeaturesXml(MakeClockPolicy(GuestOs::kWindows11, no_clock));
  EXPECT_EQ(without.find("<stimer"), std::string::npos);
  EXPECT_NE(without.find("<synic state='on'/>"), std::string::npos);
  EXPECT_EQ(LibvirtFeaturesXml(MakeClockPolicy(GuestOs::kWindowsVista)).find("<synic"),
            std::string::npos);
}

TEST(ExplainTest, ShowsEverySettingItsArgvReasonAndSource) {
  const ClockPolicy p = MakeClockPolicy(GuestOs::kLinuxLegacy);
  RenderTarget target{
      ShippedCapabilitiesFor("7.2"), Accel::kKvm, "shipped table for QEMU 7.2", "host", {}, ""};
  const std::string table = ExplainTable(p, RenderClock(p, target.caps, target.accel), target);
  for (ClockSetting s : kAllClockSettings) {
    EXPECT_NE(table.find(std::string(ToString(s))), std::string::npos) << ToString(s);
    EXPECT_NE(table.find(SettingRationale(p, s).reason), std::string::npos) << ToString(s);
  }
  EXPECT_NE(table.find("(QEMU default)"), std::string::npos);  // rtc-clock host, hv-time off
  EXPECT_NE(table.find("clocksource=acpi_pm"), std::string::npos);
  EXPECT_NE(table.find("QEMU arguments: -global kvm-pit.lost_tick_policy=delay -rtc "
                       "base=utc,driftfix=slew -machine hpet=off"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("-cpu host,kvmclock=off"), std::string::npos);
}

}  // namespace
}  // namespace kvmrun

#include "kvmrun/qemu_capabilities.h"

#include <gtest/gtest.h>

#include "kvmrun/error.h"

namespace kvmrun {
namespace {

TEST(QemuVersionTest, Parses) {
  EXPECT_EQ(ParseQemuVersion("7.2"), (QemuVersion{7, 2, 0}));
  EXPECT_EQ(ParseQemuVersion("7.2.22"), (QemuVersion{7, 2, 22}));
  EXPECT_EQ(ParseQemuVersion("10.0.2"), (QemuVersion{10, 0, 2}));
  EXPECT_EQ(ParseQemuVersion("2.12"), (QemuVersion{2, 12, 0}));
  for (const char* bad :
       {"", "7", "7.", ".2", "7.x", "7.2.", "7.2.3.4", "-1.2", "seven", "7.2 ", " 7.2", "7..2"}) {
    EXPECT_FALSE(ParseQemuVersion(bad).has_value()) << "'" << bad << "'";
  }
  EXPECT_LT(*ParseQemuVersion("2.12"), *ParseQemuVersion("5.2"));
  EXPECT_LT(*ParseQemuVersion("9.2"), *ParseQemuVersion("10.0"));
  EXPECT_EQ(ToString(QemuVersion{7, 2, 22}), "7.2.22");
}

TEST(QemuCapabilitiesTest, ShippedTablesFollowQemusOptionHistory) {
  const auto v212 = ShippedCapabilitiesFor("2.12");
  EXPECT_TRUE(v212.no_kvm_pit_reinjection_flag);
  EXPECT_TRUE(v212.no_hpet_flag);
  EXPECT_FALSE(v212.machine_hpet_property);

  const auto v52 = ShippedCapabilitiesFor("5.2");
  EXPECT_FALSE(v52.no_kvm_pit_reinjection_flag);  // removed in 3.0
  EXPECT_TRUE(v52.machine_hpet_property);         // added in 5.2
  EXPECT_TRUE(v52.no_hpet_flag);

  const auto v92 = ShippedCapabilitiesFor("9.2");
  EXPECT_FALSE(v92.no_hpet_flag);  // removed in 9.0
  EXPECT_TRUE(v92.machine_hpet_property);
  QemuCapabilities v100 = ShippedCapabilitiesFor("10.0");
  v100.version = v92.version;  // same options as 9.2
  EXPECT_TRUE(v100.SameClockFeatures(v92));
  for (const auto& caps : ShippedCapabilities()) {
    EXPECT_TRUE(caps.kvm_pit_lost_tick_policy);
    EXPECT_TRUE(caps.rtc_driftfix);
  }
}

TEST(QemuCapabilitiesTest, MicroVersionIsKeptAndIgnoredForTheTable) {
  const auto caps = ShippedCapabilitiesFor("7.2.22");
  EXPECT_EQ(caps.version, (QemuVersion{7, 2, 22}));
  EXPECT_TRUE(caps.SameClockFeatures(ShippedCapabilitiesFor("7.2")));
  EXPECT_FALSE(caps.SameClockFeatures(ShippedCapabilitiesFor("9.2")));
}

TEST(QemuCapabilitiesTest, MalformedOrUnknownVersionsAreUsageErrors) {
  try {
    ShippedCapabilitiesFor("7.x");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(),
                 "qemu_version: malformed version '7.x'; expected MAJOR.MINOR, one of: 2.12, "
                 "5.2, 7.2, 9.2, 10.0");
  }
  try {
    ShippedCapabilitiesFor("8.0");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("no capability table for QEMU '8.0'"), std::string::npos);
  }
}

TEST(AccelTest, ParsesAndRejects) {
  EXPECT_EQ(ParseAccel("KVM"), Accel::kKvm);
  EXPECT_EQ(ParseAccel("tcg"), Accel::kTcg);
  try {
    ParseAccel("hvf");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "accel: invalid value 'hvf'; valid: kvm, tcg");
  }
}

}  // namespace
}  // namespace kvmrun

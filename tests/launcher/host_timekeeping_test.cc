// What doctor says about the host's timekeeping, from recorded sysfs and cpuinfo texts.
#include "kvmrun/host_timekeeping.h"

#include <gtest/gtest.h>

namespace kvmrun {
namespace {

constexpr char kFlags[] = " fpu vme de tsc msr constant_tsc rep_good nopl nonstop_tsc cpuid";

const HostTimekeepingFact& Fact(const HostTimekeeping& host, std::string_view name) {
  for (const auto& fact : host.facts) {
    if (fact.name == name) return fact;
  }
  throw std::runtime_error("no fact " + std::string(name));
}

TEST(HostTimekeepingTest, ATscHostCanKeepKvmsMasterClock) {
  const HostTimekeeping host = AssessHostTimekeeping("tsc\n", kFlags, true);
  EXPECT_EQ(host.clocksource, "tsc");
  EXPECT_TRUE(host.master_clock_possible);
  EXPECT_TRUE(host.constant_tsc);
  EXPECT_TRUE(host.nonstop_tsc);
  EXPECT_TRUE(Fact(host, "host clocksource").good);
  EXPECT_TRUE(Fact(host, "ptp_kvm for guests").good);
  for (const auto& fact : host.facts) EXPECT_FALSE(fact.source.empty()) << fact.name;
}

TEST(HostTimekeepingTest, AnotherClocksourceLosesTheMasterClockAndSaysWhatFollows) {
  // A nested host timed by kvm-clock, or a host whose TSC was marked unstable.
  for (const char* source : {"kvm-clock", "hpet", "acpi_pm"}) {
    const HostTimekeeping host = AssessHostTimekeeping(source, kFlags, true);
    EXPECT_FALSE(host.master_clock_possible) << source;
    const auto& fact = Fact(host, "host clocksource");
    EXPECT_FALSE(fact.good);
    EXPECT_NE(fact.meaning.find("stable bit"), std::string::npos) << fact.meaning;
    EXPECT_NE(fact.meaning.find("TSC page"), std::string::npos) << fact.meaning;
    EXPECT_FALSE(Fact(host, "ptp_kvm for guests").good);
  }
}

TEST(HostTimekeepingTest, MissingTscFlagsAreNotedAndNotMatchedInsideOtherWords) {
  const HostTimekeeping host =
      AssessHostTimekeeping("tsc", " fpu tsc constant_tsc_x rdtscp", false);
  EXPECT_FALSE(host.constant_tsc);
  EXPECT_FALSE(host.nonstop_tsc);
  EXPECT_FALSE(Fact(host, "constant_tsc").good);
  EXPECT_EQ(Fact(host, "ptp_kvm for guests").value, "not in this kernel");
  EXPECT_EQ(AssessHostTimekeeping("", "", false).facts[0].value, "unknown");
}

TEST(HostTimekeepingTest, JsonCarriesEveryFact) {
  const nlohmann::json json = HostTimekeepingToJson(AssessHostTimekeeping("tsc", kFlags, true));
  EXPECT_EQ(json["clocksource"], "tsc");
  EXPECT_EQ(json["facts"].size(), 4u);
  EXPECT_TRUE(json["master_clock_possible"].get<bool>());
}

}  // namespace
}  // namespace kvmrun

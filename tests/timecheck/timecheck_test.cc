#include "kvmrun/timecheck.h"

#include <gtest/gtest.h>

#include "kvmrun/error.h"

namespace kvmrun {
namespace {

constexpr int kRate = 1024;

// A recorded run: one sample a second, `ticks_per_second[i]` ticks in second i, host and guest
// clocks in step unless `stall` holds the guest (and its ticks) for some seconds.
std::vector<TickSample> Recording(const std::vector<long long>& ticks_per_second,
                                  double host_offset = 100) {
  std::vector<TickSample> samples;
  long long ticks = 8;
  for (std::size_t i = 0; i < ticks_per_second.size(); ++i) {
    ticks += ticks_per_second[i];
    samples.push_back({static_cast<int>(i), host_offset + i, 2.0 + i, ticks});
  }
  return samples;
}

TEST(ParseTickLineTest, ReadsTheProbeFormat) {
  int rate = 0;
  const auto s = ParseTickLine("KVMRUN-TICKS seq=3 mono_ms=5079 ticks=3079 rate=1024", &rate);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->seq, 3);
  EXPECT_DOUBLE_EQ(s->guest_s, 5.079);
  EXPECT_EQ(s->ticks, 3079);
  EXPECT_EQ(rate, 1024);
  // Kernel noise before the marker on the same line is tolerated.
  EXPECT_TRUE(ParseTickLine("[ 1.2] x KVMRUN-TICKS seq=1 mono_ms=1 ticks=1 rate=8").has_value());
  for (const char* bad :
       {"KVMRUN-TICKS-START rate=1024", "KVMRUN-TICKS seq=x mono_ms=1 ticks=1 rate=1",
        "KVMRUN-TICKS seq=1 mono_ms=1 ticks=-5 rate=1024", "hello", ""}) {
    EXPECT_FALSE(ParseTickLine(bad).has_value()) << bad;
  }
}

TEST(StallPlanTest, EvenlySpreadAndLastWellBeforeTheEnd) {
  const StallPlan plan = MakeStallPlan(StallKind::kSigstop, 3, 3, 30);
  EXPECT_EQ(plan.at_guest_s, (std::vector<double>{7.5, 15, 22.5}));
  EXPECT_TRUE(MakeStallPlan(StallKind::kNone, 3, 3, 30).at_guest_s.empty());
  EXPECT_EQ(ParseStallKind("SIGSTOP"), StallKind::kSigstop);
  EXPECT_THROW(ParseStallKind("freeze"), UsageError);
}

TEST(StallSchedulerTest, FiresEachStallOnceInOrderAgainstAFakeClock) {
  StallScheduler scheduler(MakeStallPlan(StallKind::kQmp, 3, 2, 16));  // at 4, 8, 12
  std::vector<std::pair<double, std::size_t>> fired;
  for (double guest : {0.0, 1.0, 3.9, 4.0, 4.1, 5.0, 9.5, 9.6, 20.0, 21.0}) {
    if (auto due = scheduler.Due(guest)) fired.emplace_back(guest, *due);
  }
  // A late clock (9.5, past 8) fires the overdue stall, one per call.
  EXPECT_EQ(fired, (std::vector<std::pair<double, std::size_t>>{{4.0, 0}, {9.5, 1}, {20.0, 2}}));
  EXPECT_TRUE(scheduler.finished());
}

TEST(TickReportTest, APerfectClock) {
  const TickReport r = ComputeTickReport(Recording(std::vector<long long>(21, kRate)), kRate, {});
  EXPECT_EQ(r.counted, 20 * kRate);
  EXPECT_DOUBLE_EQ(r.ratio_host, 1.0);
  EXPECT_DOUBLE_EQ(r.ratio_guest, 1.0);
  EXPECT_EQ(r.worst_deficit, 0);
  EXPECT_DOUBLE_EQ(r.drift_ppm, 0);
  EXPECT_TRUE(r.warnings.empty());
}

// A 3 s SIGSTOP between samples 5 and 6: host time goes on, the guest sees nothing.
std::vector<TickSample> Stopped(bool slew) {
  std::vector<long long> per_second(21, kRate);
  std::vector<TickSample> s = Recording(per_second);
  // Host time jumps 3 s at sample 6; guest time does not.
  for (std::size_t i = 6; i < s.size(); ++i) s[i].host_s += 3;
  if (slew) {
    // The owed 3072 ticks come back at up to 8x: 7 extra seconds' worth a second, so within
    // the first second after the stall.
    for (std::size_t i = 6; i < s.size(); ++i) s[i].ticks += 3 * kRate;
  }
  return s;
}

TEST(TickReportTest, DiscardLosesTheStalledTicksForGood) {
  const std::vector<StallRecord> stalls = {{5, 105.5, 108.5}};
  const TickReport r = ComputeTickReport(Stopped(false), kRate, stalls);
  EXPECT_EQ(r.counted, 20 * kRate);
  EXPECT_NEAR(r.ratio_host, 20.0 / 23, 1e-9);
  EXPECT_DOUBLE_EQ(r.ratio_guest, 1.0);
  EXPECT_EQ(r.worst_deficit, kRate * 3 / 4);  // 3 s of ticks missing over a 4 s interval
  ASSERT_EQ(r.catch_up_s.size(), 1u);
  EXPECT_FALSE(r.catch_up_s[0].has_value());
  EXPECT_NEAR(r.drift_ppm, (20.0 / 23 - 1) * 1e6, 1e-3);
}

TEST(TickReportTest, SlewCatchesUpAfterTheStall) {
  const std::vector<StallRecord> stalls = {{5, 105.5, 108.5}};
  const TickReport r = ComputeTickReport(Stopped(true), kRate, stalls);
  EXPECT_DOUBLE_EQ(r.ratio_host, 1.0);
  ASSERT_TRUE(r.catch_up_s[0].has_value());
  EXPECT_LE(*r.catch_up_s[0], 1.0);
  EXPECT_NEAR(r.ratio_guest, 23.0 / 20, 1e-9) << "more ticks than the guest's own clock saw";
}

TEST(TickReportTest, LostLinesAreWarnedAndDoNotSkewTheResult) {
  std::vector<TickSample> s = Recording(std::vector<long long>(21, kRate));
  s.erase(s.begin() + 7, s.begin() + 9);  // seq 7 and 8 never arrived
  const TickReport r = ComputeTickReport(s, kRate, {});
  EXPECT_DOUBLE_EQ(r.ratio_host, 1.0);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0], "2 line(s) lost after seq 6");
}

TEST(TickReportTest, ACounterGoingBackwardsIsAResetNotANegativeCount) {
  std::vector<TickSample> s = Recording(std::vector<long long>(11, kRate));
  // A reboot at sample 6: the counter and the guest clock start again from zero.
  for (std::size_t i = 6; i < s.size(); ++i) {
    s[i].ticks = static_cast<long long>(i - 5) * kRate;
    s[i].guest_s = static_cast<double>(i - 5);
  }
  const TickReport r = ComputeTickReport(s, kRate, {});
  EXPECT_GT(r.counted, 0);
  EXPECT_NEAR(r.ratio_host, 1.0, 0.11);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find("went backwards at seq 6"), std::string::npos);
}

TEST(TickReportTest, TooFewSamples) {
  const TickReport r = ComputeTickReport(Recording({kRate}), kRate, {});
  EXPECT_EQ(r.counted, 0);
  EXPECT_EQ(r.warnings, (std::vector<std::string>{"too few samples to measure anything"}));
}

TEST(TimecheckFormatTest, SideBySideTableAndJson) {
  TimecheckOptions o;
  o.duration_s = 20;
  TimecheckRun slew{
      "linux-legacy", MakeClockPolicy(GuestOs::kLinuxLegacy), Accel::kTcg, {}, {}, {}};
  slew.report = ComputeTickReport(Stopped(true), kRate, {{5, 105.5, 108.5}});
  TimecheckRun discard{"default", MakeClockPolicy(GuestOs::kOther), Accel::kTcg, {}, {}, {}};
  discard.report = ComputeTickReport(Stopped(false), kRate, {{5, 105.5, 108.5}});
  const std::string table = FormatTimecheckTable({slew, discard}, o);
  EXPECT_NE(table.find("linux-legacy"), std::string::npos);
  EXPECT_NE(table.find("rtc slew, pit delay"), std::string::npos);
  EXPECT_NE(table.find("rtc discard, pit delay"), std::string::npos);
  EXPECT_NE(table.find("1.0000"), std::string::npos);
  EXPECT_NE(table.find("0.8696"), std::string::npos);
  EXPECT_NE(table.find("never"), std::string::npos);
  const nlohmann::json j = TimecheckToJson({slew, discard}, o);
  EXPECT_EQ(j["runs"][0]["rtc_policy"], "slew");
  EXPECT_DOUBLE_EQ(j["runs"][0]["ratio_host"].get<double>(), 1.0);
  EXPECT_TRUE(j["runs"][1]["catch_up_s"][0].is_null());
}

}  // namespace
}  // namespace kvmrun

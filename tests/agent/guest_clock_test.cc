// The guest wall-clock arithmetic (bracketing, host clock steps, a guest clock that moves),
// the rows it adds to a clock report, and measure/resync against a fake qemu-ga whose clock
// the test controls.
#include "kvmrun/guest_clock.h"

#include <gtest/gtest.h>

#include "tests/support/fake_qmp_transport.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
using testing::FakeQmpPeer;
using testing::FakeTransport;

constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kS = 1'000'000'000;
constexpr std::int64_t kEpoch = 1'795'755'600 * kS;

// A sample whose host round trip is [before, before + rtt] on both clocks.
WallClockSample Sample(std::int64_t before, std::int64_t rtt, std::int64_t guest) {
  return {before, before + rtt, before, before + rtt, guest};
}

TEST(GuestOffsetTest, IsTakenAtTheMidpointOfTheRoundTripWithHalfOfItAsUncertainty) {
  GuestOffset off = OffsetFromSamples({Sample(kEpoch, 4 * kMs, kEpoch + 2 * kMs + 500 * kMs)});
  EXPECT_EQ(off.offset_ns, 500 * kMs);
  EXPECT_EQ(off.uncertainty_ns, 2 * kMs);
  EXPECT_EQ(off.host_ns, kEpoch + 2 * kMs);
  EXPECT_EQ(off.ToString(), "+0.500 s +- 2.00 ms");
  off.uncertainty_ns = 250 * kMs;
  EXPECT_EQ(off.ToString(), "+0.500 s +- 0.250 s");
}

TEST(GuestOffsetTest, KeepsTheNarrowestOfConsistentSamples) {
  const GuestOffset off = OffsetFromSamples({
      Sample(kEpoch, 10 * kMs, kEpoch + 5 * kMs - 3 * kMs),             // -3 ms +- 5 ms
      Sample(kEpoch + 20 * kMs, 2 * kMs, kEpoch + 21 * kMs - 2 * kMs),  // -2 ms +- 1 ms
      Sample(kEpoch + 30 * kMs, 6 * kMs, kEpoch + 33 * kMs),            // 0 +- 3 ms
  });
  EXPECT_EQ(off.offset_ns, -2 * kMs);
  EXPECT_EQ(off.uncertainty_ns, kMs);
  EXPECT_EQ(off.samples, 3);
  EXPECT_EQ(off.discarded, 0);
  EXPECT_FALSE(off.guest_stepped);
}

TEST(GuestOffsetTest, DiscardsSamplesDuringWhichTheHostClockWasStepped) {
  // The host's wall clock jumped 1 s forward during the first sample and 1 s back during the
  // second; the monotonic clock says the round trips were 2 ms.
  WallClockSample forward{kEpoch, kEpoch + kS + 2 * kMs, 0, 2 * kMs, kEpoch + 1 * kMs};
  WallClockSample back{kEpoch + kS, kEpoch + 2 * kMs, 10 * kMs, 12 * kMs, kEpoch + kMs};
  const GuestOffset off = OffsetFromSamples(
      {forward, back, Sample(kEpoch + 3 * kMs, 2 * kMs, kEpoch + 4 * kMs + 7 * kMs)});
  EXPECT_EQ(off.discarded, 2);
  EXPECT_EQ(off.offset_ns, 7 * kMs);
  EXPECT_THROW(OffsetFromSamples({forward, back}), Error);
  EXPECT_THROW(OffsetFromSamples({}), Error);
}

TEST(GuestOffsetTest, ASlewingHostClockIsNotAStep) {
  // NTP slews at most 500 ppm: 1 s of round trip differs by 0.5 ms between the clocks.
  WallClockSample slewed{kEpoch, kEpoch + kS + kS / 2000, 0, kS, kEpoch + kS / 2};
  EXPECT_EQ(OffsetFromSamples({slewed}).discarded, 0);
}

TEST(GuestOffsetTest, AGuestClockThatMovesDuringTheMeasurementIsFlaggedAndTheLatestWins) {
  const GuestOffset off = OffsetFromSamples({
      Sample(kEpoch, 2 * kMs, kEpoch + kMs - 3600 * kS),                // an hour behind...
      Sample(kEpoch + 10 * kMs, 4 * kMs, kEpoch + 12 * kMs + 1 * kMs),  // ...then set right
  });
  EXPECT_TRUE(off.guest_stepped);
  EXPECT_EQ(off.offset_ns, kMs);
}

TEST(GuestOffsetTest, SurelyOffSubtractsTheUncertainty) {
  GuestOffset off;
  off.offset_ns = -3 * kS;
  off.uncertainty_ns = kS;
  EXPECT_EQ(off.SurelyOffNs(), 2 * kS);
  off.uncertainty_ns = 5 * kS;
  EXPECT_EQ(off.SurelyOffNs(), 0);
}

GuestClockReading Reading(std::int64_t offset_ns, std::string clocksource) {
  GuestClockReading reading;
  GuestOffset off;
  off.offset_ns = offset_ns;
  off.uncertainty_ns = kMs;
  off.samples = 5;
  reading.offset.value = off;
  reading.clocksource.value = GuestClocksource{std::move(clocksource), "tsc hpet acpi_pm"};
  return reading;
}

const ClockCheck& Row(const std::vector<ClockCheck>& rows, std::string_view timer) {
  for (const ClockCheck& row : rows) {
    if (row.timer == timer) return row;
  }
  throw std::runtime_error("no row " + std::string(timer));
}

TEST(CompareGuestClockTest, AnOffsetBeyondTheThresholdIsAMismatch) {
  const ClockPolicy linux_policy = MakeClockPolicy(GuestOs::kLinux);
  auto rows = CompareGuestClock(linux_policy, Accel::kTcg, Reading(kS / 2, "tsc"), 2s);
  EXPECT_EQ(Row(rows, "guest-time").outcome, CheckOutcome::kOk);
  EXPECT_EQ(Row(rows, "guest-time").observed, "+0.500 s +- 1.00 ms");
  rows = CompareGuestClock(linux_policy, Accel::kTcg, Reading(-3600 * kS, "tsc"), 2s);
  EXPECT_EQ(Row(rows, "guest-time").outcome, CheckOutcome::kMismatch);
  // Within the uncertainty of the threshold: not surely beyond it.
  rows = CompareGuestClock(linux_policy, Accel::kTcg, Reading(2 * kS + kMs / 2, "tsc"), 2s);
  EXPECT_EQ(Row(rows, "guest-time").outcome, CheckOutcome::kOk);
}

TEST(CompareGuestClockTest, AnOffsetOfTheHostsUtcOffsetIsNamedAsAnRtcBaseTheGuestDoesNotShare) {
  const std::int64_t ist = 5 * 3600 + 1800;  // UTC+05:30
  const auto detail = [&](GuestOs os, std::int64_t offset_ns, std::int64_t utc_offset_s) {
    GuestClockReading reading = Reading(offset_ns, "tsc");
    reading.host_utc_offset_s = utc_offset_s;
    return Row(CompareGuestClock(MakeClockPolicy(os), Accel::kTcg, reading, 2s), "guest-time")
        .detail;
  };
  // A local-time RTC read as UTC: the guest is ahead by the offset, give or take the boot.
  EXPECT_NE(detail(GuestOs::kWindows10, ist * kS + kS, ist)
                .find("off by the host's UTC offset (UTC+05:30): the policy keeps the RTC in local "
                      "time and the guest reads it as UTC"),
            std::string::npos);
  // A UTC RTC read as local time: behind by it.
  EXPECT_NE(detail(GuestOs::kLinux, -ist * kS, ist)
                .find("keeps the RTC in UTC and the guest "
                      "reads it as local time"),
            std::string::npos);
  // West of Greenwich the signs turn round.
  EXPECT_NE(detail(GuestOs::kWindows10, -5 * 3600 * kS, -5 * 3600).find("(UTC-05:00)"),
            std::string::npos);
  // Any other offset, the wrong sign, or a host on UTC: no such hint.
  EXPECT_EQ(detail(GuestOs::kWindows10, 3 * 3600 * kS, ist).find("UTC offset"), std::string::npos);
  EXPECT_EQ(detail(GuestOs::kWindows10, -ist * kS, ist).find("UTC offset"), std::string::npos);
  EXPECT_EQ(detail(GuestOs::kWindows10, 3600 * kS, 0).find("UTC offset"), std::string::npos);
}

TEST(CompareGuestClockTest, TheClocksourceFollowsThePolicyAndTheAccelerator) {
  const ClockPolicy linux_policy = MakeClockPolicy(GuestOs::kLinux);
  const ClockPolicy legacy = MakeClockPolicy(GuestOs::kLinuxLegacy);
  const auto outcome = [](const ClockPolicy& p, Accel a, const char* source) {
    return Row(CompareGuestClock(p, a, Reading(0, source), 2s), "guest-clocksource").outcome;
  };
  EXPECT_EQ(outcome(linux_policy, Accel::kKvm, "kvm-clock"), CheckOutcome::kOk);
  EXPECT_EQ(outcome(linux_policy, Accel::kKvm, "tsc"), CheckOutcome::kMismatch);
  EXPECT_EQ(outcome(legacy, Accel::kKvm, "kvm-clock"), CheckOutcome::kMismatch);
  EXPECT_EQ(outcome(legacy, Accel::kKvm, "acpi_pm"), CheckOutcome::kOk);
  EXPECT_EQ(outcome(linux_policy, Accel::kTcg, "tsc"), CheckOutcome::kOk);
  EXPECT_EQ(outcome(linux_policy, Accel::kTcg, "hpet"), CheckOutcome::kOk);
  EXPECT_EQ(outcome(MakeClockPolicy(GuestOs::kWindows11), Accel::kKvm, "-"),
            CheckOutcome::kNotApplicable);
}

TEST(CompareGuestClockTest, WithoutAnAgentBothRowsSaySoAndNothingFails) {
  const auto rows = CompareGuestClock(MakeClockPolicy(GuestOs::kLinux), Accel::kTcg,
                                      NoAgentReading("started with --no-agent"), 2s);
  ASSERT_EQ(rows.size(), 2u);
  ClockReport report;
  report.checks = rows;
  EXPECT_TRUE(report.ok());
  for (const ClockCheck& row : rows) {
    EXPECT_EQ(row.observed, "no agent");
    EXPECT_EQ(row.detail, "started with --no-agent");
  }
}

TEST(CompareGuestClockTest, AReadThatFailedIsUnknownWithItsReason) {
  GuestClockReading reading = Reading(0, "tsc");
  reading.offset.value.reset();
  reading.offset.error = "guest-get-time: command not allowed";
  const auto rows = CompareGuestClock(MakeClockPolicy(GuestOs::kLinux), Accel::kTcg, reading, 2s);
  EXPECT_EQ(Row(rows, "guest-time").outcome, CheckOutcome::kUnknown);
  EXPECT_EQ(Row(rows, "guest-time").detail, "guest-get-time: command not allowed");
}

// A qemu-ga whose clock is the test's: guest-get-time answers host time plus `offset`, and
// guest-set-time sets the offset.
class GuestClockAgentTest : public ::testing::Test {
 protected:
  GuestClockAgentTest() : peer_(std::make_shared<FakeQmpPeer>()) {
    peer_->SetResponder([this](const nlohmann::json& c) -> std::vector<std::string> {
      const std::string name = c.value("execute", "");
      const nlohmann::json args = c.value("arguments", nlohmann::json::object());
      const nlohmann::json id = c.value("id", nlohmann::json());
      const auto reply = [&](const nlohmann::json& value) {
        return std::vector<std::string>{nlohmann::json{{"return", value}, {"id", id}}.dump() +
                                        "\n"};
      };
      if (name == "guest-sync-delimited") {
        return {"\xff" + nlohmann::json{{"return", args["id"]}}.dump() + "\n"};
      }
      if (name == "guest-ping") return reply(nlohmann::json::object());
      if (name == "guest-get-time") return reply(SystemTimeSource().realtime_ns() + offset_);
      if (name == "guest-set-time") {
        offset_ = args["time"].get<std::int64_t>() - SystemTimeSource().realtime_ns();
        if (no_hwclock_) {
          return {nlohmann::json{{"error",
                                  {{"class", "GenericError"},
                                   {"desc",
                                    "hwclock failed to set hardware clock to system "
                                    "time"}}},
                                 {"id", id}}
                      .dump() +
                  "\n"};
        }
        return reply(nlohmann::json::object());
      }
      return {};
    });
  }
  std::atomic<std::int64_t> offset_{0};
  bool no_hwclock_ = false;
  std::shared_ptr<FakeQmpPeer> peer_;
};

TEST_F(GuestClockAgentTest, MeasuresTheGuestsOffsetWithinItsUncertainty) {
  offset_ = -3600 * kS;
  GuestAgent agent(FakeTransport(peer_));
  const GuestOffset off = MeasureGuestOffset(agent, 5);
  EXPECT_EQ(off.samples, 5);
  EXPECT_LE(std::llabs(off.offset_ns + 3600 * kS), off.uncertainty_ns + kMs);
  EXPECT_LT(off.uncertainty_ns, 100 * kMs);
}

TEST_F(GuestClockAgentTest, ResyncSetsTheClockAndMeasuresBeforeAndAfter) {
  offset_ = 7 * kS;
  GuestAgent agent(FakeTransport(peer_));
  const ResyncResult r = ResyncGuestClock(agent);
  EXPECT_GT(r.before.offset_ns, 6 * kS);
  EXPECT_LT(std::llabs(r.after.offset_ns), 50 * kMs);
  EXPECT_TRUE(r.rtc_note.empty());
  EXPECT_NE(FormatResync(r).find("+7.0"), std::string::npos) << FormatResync(r);
}

TEST_F(GuestClockAgentTest, AGuestWithoutHwclockIsSetAndSaysItsRtcWasNot) {
  offset_ = -5 * kS;
  no_hwclock_ = true;
  GuestAgent agent(FakeTransport(peer_));
  const ResyncResult r = ResyncGuestClock(agent);
  EXPECT_LT(std::llabs(r.after.offset_ns), 50 * kMs);
  EXPECT_NE(r.rtc_note.find("RTC was not"), std::string::npos) << r.rtc_note;
}

}  // namespace
}  // namespace kvmrun

// RunUntilExit against a fake QEMU: the guest ending by itself, the timeout, stop requests and
// a second request cutting the ladder short.
#include "kvmrun/vm_run.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <thread>

#include "tests/support/fake_qemu.h"
#include "tests/support/qemu_process.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
using testing::FakeQemuBehaviour;
using testing::FakeQemuRunner;

class VmRunTest : public ::testing::Test {
 protected:
  std::unique_ptr<Vm> Start(FakeQemuBehaviour behaviour) {
    runner_ = std::make_shared<FakeQemuRunner>(std::move(behaviour));
    VmSpec spec;
    spec.qemu = "/bin/true";  // found and executable; the fake runner never runs it
    spec.verify = VerifyMode::kOff;
    auto vm = Vm::Start(spec, testing::FakeVmOptions(runner_, runtime_.path(), notices_));
    vm->Continue();
    return vm;
  }

  testing::TempDir runtime_;
  std::shared_ptr<FakeQemuRunner> runner_;
  std::vector<std::string> notices_;
};

TEST_F(VmRunTest, TheStallWatchReportsAQmpPauseOnceItEndsOnTheRunsThread) {
  auto vm = Start({});
  std::vector<VmStall> seen;
  std::vector<std::thread::id> threads;
  RunLimits limits;
  limits.timeout = 1500ms;
  limits.grace = 1s;
  limits.stall_poll = 20ms;
  limits.on_stall = [&](const VmStall& stall) {
    seen.push_back(stall);
    threads.push_back(std::this_thread::get_id());
  };
  std::thread pauser([&] {
    std::this_thread::sleep_for(200ms);
    vm->Pause();
    std::this_thread::sleep_for(400ms);
    vm->Resume();
  });
  const RunOutcome out = RunUntilExit(*vm, limits);
  pauser.join();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].kind, VmStall::Kind::kPaused);
  EXPECT_GE(seen[0].length, 300ms);
  EXPECT_LT(seen[0].length, 1200ms);
  EXPECT_EQ(threads[0], std::this_thread::get_id());
  ASSERT_EQ(out.stalls.size(), 1u);
  EXPECT_EQ(out.stopped_by, "timeout");
  EXPECT_EQ(ToString(VmStall::Kind::kPaused), "paused over QMP");
}

TEST_F(VmRunTest, TheGuestClockGateStopsARunWhoseGuestIsAnHourOff) {
  FakeQemuBehaviour wrong_clock;
  wrong_clock.agent_offset_s = -3600;
  auto vm = Start(wrong_clock);
  ASSERT_FALSE(vm->agent_socket().empty());
  std::vector<std::vector<ClockCheck>> results;
  RunLimits limits;
  limits.timeout = 10s;
  limits.grace = 1s;
  limits.stall_poll = 20ms;
  GuestClockGate gate;
  gate.wait = 5s;
  gate.stop_on_mismatch = true;
  gate.on_result = [&](const std::vector<ClockCheck>& rows) { results.push_back(rows); };
  limits.guest_clock = gate;
  const RunOutcome out = RunUntilExit(*vm, limits);
  EXPECT_EQ(out.stopped_by, kGuestClockMismatch);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_FALSE(out.guest_clock.empty());
  EXPECT_EQ(out.guest_clock[0].timer, "guest-time");
  EXPECT_EQ(out.guest_clock[0].outcome, CheckOutcome::kMismatch);
  EXPECT_NE(out.guest_clock[0].observed.find("-3600"), std::string::npos)
      << out.guest_clock[0].observed;
}

TEST_F(VmRunTest, TheGuestClockGateReportsAGoodClockAndTheRunGoesOn) {
  FakeQemuBehaviour good_clock;
  good_clock.agent_offset_s = 0.2;
  auto vm = Start(good_clock);
  RunLimits limits;
  limits.timeout = 1s;
  limits.grace = 1s;
  GuestClockGate gate;
  gate.stop_on_mismatch = true;
  limits.guest_clock = gate;
  const RunOutcome out = RunUntilExit(*vm, limits);
  EXPECT_EQ(out.stopped_by, "timeout");
  ASSERT_FALSE(out.guest_clock.empty());
  EXPECT_EQ(out.guest_clock[0].outcome, CheckOutcome::kOk);
}

TEST_F(VmRunTest, WithoutTheStallWatchNothingAsksQemuForItsStatus) {
  auto vm = Start({});
  RunLimits limits;
  limits.timeout = 300ms;
  limits.grace = 1s;
  const RunOutcome out = RunUntilExit(*vm, limits);
  EXPECT_TRUE(out.stalls.empty());
  const auto commands = runner_->commands();
  EXPECT_EQ(std::count(commands.begin(), commands.end(), "query-status"), 0);
}

TEST_F(VmRunTest, TheTimeoutRunsTheLadderAndSaysSo) {
  auto vm = Start({});
  std::vector<std::string> stopping;
  RunLimits limits;
  limits.timeout = 50ms;
  limits.grace = 1s;
  limits.on_stopping = [&](std::string_view why) { stopping.emplace_back(why); };
  const RunOutcome out = RunUntilExit(*vm, limits);
  EXPECT_EQ(out.stopped_by, "timeout");
  EXPECT_EQ(out.step, ShutdownStep::kPowerdown);
  EXPECT_FALSE(out.ok());
  EXPECT_EQ(stopping, (std::vector<std::string>{"timeout"}));
}

TEST_F(VmRunTest, AStopRequestRunsTheLadderAndASecondOneKillsAtOnce) {
  FakeQemuBehaviour stubborn;
  stubborn.powerdown_works = false;
  auto vm = Start(stubborn);
  StopRequests stop;
  RunLimits limits;
  limits.grace = 60s;  // would hold the ladder for a minute without the second request
  limits.stop = &stop;
  limits.on_stopping = [&](std::string_view) {
    std::thread([&] {
      std::this_thread::sleep_for(100ms);
      stop.Request("second");
    }).detach();
  };
  stop.Request("first");
  const auto start = std::chrono::steady_clock::now();
  const RunOutcome out = RunUntilExit(*vm, limits);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(out.stopped_by, "first");
  EXPECT_EQ(out.step, ShutdownStep::kKill);
  EXPECT_EQ(runner_->signals(), (std::vector<int>{SIGKILL}));
  EXPECT_FALSE(stop.Pending());
}

TEST_F(VmRunTest, AGuestThatPowersOffIsOkAndTheMarkerIsTimed) {
  FakeQemuBehaviour b;
  b.console_text = "booting\r\nMARKER here\r\n";
  auto vm = Start(b);
  RunLimits limits;
  limits.timeout = 200ms;
  limits.marker = ConsolePattern("^MARKER");
  const RunOutcome out = RunUntilExit(*vm, limits);
  ASSERT_TRUE(out.marker_after.has_value());
  EXPECT_LE(*out.marker_after, out.ran);
}

}  // namespace
}  // namespace kvmrun

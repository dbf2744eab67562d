// kvmrun::Vm against a fake QEMU: start, continue, console, the shutdown ladder, failures.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "kvmrun/error.h"
#include "kvmrun/vm.h"
#include "tests/support/fake_kvm_host.h"
#include "tests/support/fake_qemu.h"
#include "tests/support/qemu_process.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
using testing::FakeQemuBehaviour;
using testing::FakeQemuRunner;

class VmLifecycleTest : public ::testing::Test {
 protected:
  std::unique_ptr<Vm> Start(FakeQemuBehaviour behaviour, VmSpec spec = {}) {
    runner_ = std::make_shared<FakeQemuRunner>(std::move(behaviour));
    spec.qemu = "/bin/true";  // found and executable; the fake runner never runs it
    spec.verify = VerifyMode::kOff;
    return Vm::Start(spec, testing::FakeVmOptions(runner_, runtime_.path(), notices_));
  }
  bool RuntimeEmpty() const { return std::filesystem::is_empty(runtime_.path()); }

  testing::TempDir runtime_;
  std::shared_ptr<FakeQemuRunner> runner_;
  std::vector<std::string> notices_;
};

TEST_F(VmLifecycleTest, StartsPausedThenContinuesAndReadsTheConsole) {
  FakeQemuBehaviour b;
  b.console_text = "booting\r\nKVMRUN-GUEST-READY\r\n";
  auto vm = Start(b);
  EXPECT_EQ(vm->accel().accel, Accel::kTcg);
  EXPECT_EQ(notices_.size(), 1u);
  EXPECT_NE(notices_[0].find("running under TCG"), std::string::npos);
  EXPECT_TRUE(std::filesystem::is_directory(vm->runtime_dir()));
  vm->Continue();
  const ConsoleMatch m = vm->WaitForConsole(ConsolePattern("GUEST-READY"), 5s);
  EXPECT_EQ(m.outcome, ConsoleMatch::Outcome::kMatched);
  EXPECT_EQ(runner_->commands(), (std::vector<std::string>{"qmp_capabilities", "cont"}));
  const auto& argv = runner_->last_request().argv;
  EXPECT_NE(std::find(argv.begin(), argv.end(), "-S"), argv.end());
  EXPECT_TRUE(runner_->last_request().die_with_parent);
  EXPECT_EQ(runner_->last_request().pass_fds.size(), 2u);
}

TEST_F(VmLifecycleTest, LadderStopsAtPowerdownWhenTheGuestCooperates) {
  auto vm = Start({});
  vm->Continue();  // a guest hears the power button only once it runs
  const ShutdownResult r = vm->Shutdown(1s);
  EXPECT_EQ(r.step, ShutdownStep::kPowerdown);
  EXPECT_EQ(r.status, (ExitStatus{0, 0}));
  EXPECT_EQ(vm->ShutdownReason(), "guest-shutdown");
  EXPECT_EQ(vm->Shutdown(1s).step, ShutdownStep::kAlreadyExited);
}

// A VM stopped before its guest ever ran (QEMU in prelaunch) has nothing to power off: once
// its run state is read, the ladder quits QEMU instead of spending the grace on a button nobody
// hears, and says so.
TEST_F(VmLifecycleTest, AVmThatNeverRanIsQuitWithoutWaitingForThePowerButton) {
  auto vm = Start({});
  const ShutdownResult r = vm->Shutdown(10s);
  EXPECT_EQ(r.step, ShutdownStep::kQuit);
  EXPECT_EQ(r.note, "the guest had not started (prelaunch): nothing to power off");
  const auto commands = runner_->commands();
  EXPECT_EQ(std::count(commands.begin(), commands.end(), "query-status"), 1);
  EXPECT_EQ(std::count(commands.begin(), commands.end(), "quit"), 1);
}

// A guest paused over QMP hears the button only once it runs again: the ladder resumes it,
// and it powers off when asked, a clean stop rather than a grace spent and a forced quit.
TEST_F(VmLifecycleTest, APausedGuestIsResumedToHearThePowerButton) {
  auto vm = Start({});
  vm->Continue();
  vm->Pause();
  const ShutdownResult r = vm->Shutdown(10s);
  EXPECT_EQ(r.step, ShutdownStep::kPowerdown);
  EXPECT_EQ(r.note, "the paused guest was resumed to hear the power button");
  EXPECT_EQ(vm->ShutdownReason(), "guest-shutdown");
}

TEST_F(VmLifecycleTest, LadderFallsToQuit) {
  FakeQemuBehaviour b;
  b.powerdown_works = false;
  auto vm = Start(b);
  const ShutdownResult r = vm->Shutdown(50ms);
  EXPECT_EQ(r.step, ShutdownStep::kQuit);
  EXPECT_EQ(runner_->commands().back(), "quit");
  EXPECT_EQ(vm->ShutdownReason(), "host-qmp-quit");
}

TEST_F(VmLifecycleTest, LadderFallsToSigterm) {
  FakeQemuBehaviour b;
  b.powerdown_works = false;
  b.quit_works = false;
  auto vm = Start(b);
  const ShutdownResult r = vm->Shutdown(50ms);
  EXPECT_EQ(r.step, ShutdownStep::kTerminate);
  EXPECT_EQ(r.status.signal, SIGTERM);
  EXPECT_EQ(runner_->signals(), (std::vector<int>{SIGTERM}));
}

TEST_F(VmLifecycleTest, LadderEndsWithSigkill) {
  FakeQemuBehaviour b;
  b.powerdown_works = false;
  b.quit_works = false;
  b.sigterm_works = false;
  auto vm = Start(b);
  const ShutdownResult r = vm->Shutdown(50ms);
  EXPECT_EQ(r.step, ShutdownStep::kKill);
  EXPECT_EQ(runner_->signals(), (std::vector<int>{SIGTERM, SIGKILL}));
}

TEST_F(VmLifecycleTest, ZeroGraceSkipsPowerdown) {
  auto vm = Start({});
  EXPECT_EQ(vm->Shutdown(0ms).step, ShutdownStep::kQuit);
  const auto commands = runner_->commands();
  EXPECT_EQ(std::count(commands.begin(), commands.end(), "system_powerdown"), 0);
}

TEST_F(VmLifecycleTest, QemuFailingAtStartIsAVmErrorWithItsMessageAndNothingLeft) {
  FakeQemuBehaviour b;
  b.exit_at_start = 1;
  b.stderr_text = "qemu-system-x86_64: -drive file=x: Could not open 'x': Permission denied\n";
  try {
    Start(b);
    FAIL();
  } catch (const VmError& e) {
    EXPECT_NE(
        std::string(e.what()).find("QEMU exited (exit code 1): qemu-system-x86_64: -drive file=x: "
                                   "Could not open 'x': Permission denied"),
        std::string::npos)
        << e.what();
    EXPECT_FALSE(e.argv().empty());
    EXPECT_EQ(e.stderr_tail(), b.stderr_text);
  }
  EXPECT_TRUE(RuntimeEmpty());
}

TEST_F(VmLifecycleTest, NoGreetingIsAVmErrorAndTheProcessIsKilled) {
  FakeQemuBehaviour b;
  b.greet = false;
  try {
    Start(b);
    FAIL();
  } catch (const VmError& e) {
    EXPECT_NE(std::string(e.what()).find("QEMU did not start (no QMP greeting within"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(runner_->signals(), (std::vector<int>{SIGKILL}));
  EXPECT_TRUE(RuntimeEmpty());
}

TEST_F(VmLifecycleTest, DestroyingARunningVmStopsItAndRemovesItsDirectory) {
  FakeQemuBehaviour b;
  b.quit_works = false;
  {
    auto vm = Start(b);
    vm->Continue();
  }
  EXPECT_EQ(runner_->signals(), (std::vector<int>{SIGTERM}));
  EXPECT_TRUE(RuntimeEmpty());
}

TEST_F(VmLifecycleTest, ExplicitKvmWithoutKvmFailsBeforeAnythingRuns) {
  VmSpec spec;
  spec.accel = AccelRequest::kKvm;
  EXPECT_THROW(Start({}, spec), VmError);
  EXPECT_TRUE(RuntimeEmpty());
}

TEST_F(VmLifecycleTest, WaitForExitReturnsEarlyOnTheInterruptDescriptor) {
  auto vm = Start({});
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(vm->WaitForExit(10s, fds[0]).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace kvmrun

namespace kvmrun {
namespace {

// --dry-run runs nothing it does not own up to: no VM, no probe guest, no runtime directory.
TEST(PlanVmTest, BootsNothingAndSaysWhatItAssumed) {
  testing::TempDir dir;
  auto runner = std::make_shared<testing::FakeQemuRunner>(testing::FakeQemuBehaviour{});
  std::vector<std::string> notices;
  VmOptions options = testing::FakeVmOptions(runner, dir.path(), notices);
  options.kvm_diagnosis.reset();  // diagnose, with an empty cache
  options.kvm_host = std::make_shared<testing::FakeKvmHost>();
  VmSpec spec;
  spec.qemu = "/bin/true";
  const VmPlan plan = PlanVm(spec, options);
  EXPECT_TRUE(runner->last_request().argv.empty()) << "something was spawned";
  EXPECT_NE(std::find(plan.argv.begin(), plan.argv.end(), "kvm"), plan.argv.end());
  ASSERT_EQ(plan.notes.size(), 2u);
  EXPECT_NE(plan.notes[0].find("no probe guest was booted"), std::string::npos);
  EXPECT_NE(plan.notes[1].find("a command to run without kvmrun"), std::string::npos);
  // Pasteable: no inherited descriptors, not paused, its sockets where the note says.
  for (const std::string& arg : plan.argv) {
    EXPECT_EQ(arg.find("fd="), std::string::npos) << arg;
    EXPECT_NE(arg, "-S");
  }
  EXPECT_NE(std::find(plan.argv.begin(), plan.argv.end(), "stdio,id=kvmrun-console"),
            plan.argv.end());
  EXPECT_NE(plan.notes[1].find(dir.path() + "/kvmrun.qmp.sock"), std::string::npos)
      << plan.notes[1];
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
}  // namespace kvmrun

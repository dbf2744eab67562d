// `kvmrun run` with its console on a terminal (a pty the test holds, as a person's terminal)
// and on a pipe (--console-input): typing reaches the guest's shell, its answer comes back,
// the escape key stops the VM, and the terminal's modes are back after every way out.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/kvmrun_process.h"
#include "tests/support/qemu_binary.h"
#include "tests/support/qemu_process.h"
#include "tests/support/run_command.h"
#include "tests/support/test_guest.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
using testing::KvmrunProcess;
using testing::ReadUntil;
using testing::Type;

class ConsoleCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::TestQemuBinary().empty()) GTEST_SKIP() << "qemu-system-x86_64 not installed";
    ASSERT_EQ(openpty(&master_, &slave_, nullptr, nullptr, nullptr), 0);
    ASSERT_EQ(tcgetattr(slave_, &before_), 0);
  }
  void TearDown() override {
    if (master_ >= 0) close(master_);
    if (slave_ >= 0) close(slave_);
  }

  std::vector<std::string> Args(std::vector<std::string> more = {}) const {
    auto args = testing::RunTestGuestArgs("linux", "kvmrun.shell");
    args.insert(args.end(), {"--no-agent", "--grace", "1"});
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  std::vector<std::string> Env() const {
    return {"XDG_RUNTIME_DIR=" + dir_.path(), "XDG_CACHE_HOME=" + dir_.path() + "/cache"};
  }

  // Boots the shell guest on the terminal and checks a command's answer comes back.
  std::unique_ptr<KvmrunProcess> BootOnTheTerminal(std::vector<std::string> more = {}) {
    auto kvmrun =
        std::make_unique<KvmrunProcess>(Args(std::move(more)), slave_, slave_, true, Env());
    const std::size_t start = seen_.size();
    EXPECT_TRUE(ReadUntil(master_, seen_, " stops the VM", start, 120s, kvmrun.get())) << seen_;
    EXPECT_TRUE(ReadUntil(master_, seen_, "guest# ", start, 120s, kvmrun.get())) << seen_;
    const std::size_t from = seen_.size();
    Type(master_, "echo $((6 * 7))\r");  // Enter on a terminal is CR
    EXPECT_TRUE(ReadUntil(master_, seen_, "\n42\r", from, 60s, kvmrun.get())) << seen_;
    // The next prompt before the next keys, as a person types (keys typed while busybox sets
    // up its line editing can be lost).
    EXPECT_TRUE(ReadUntil(master_, seen_, "guest# ", seen_.find("\n42\r", from), 60s, kvmrun.get()))
        << seen_;
    return kvmrun;
  }

  // The terminal's modes are as they were before kvmrun ran.
  void ExpectModesRestored() {
    termios after;
    ASSERT_EQ(tcgetattr(slave_, &after), 0);
    EXPECT_EQ(after.c_lflag, before_.c_lflag) << "ICANON, ECHO, ISIG...";
    EXPECT_EQ(after.c_iflag, before_.c_iflag) << "ICRNL, IXON...";
    EXPECT_EQ(after.c_oflag, before_.c_oflag);
    EXPECT_EQ(after.c_cflag, before_.c_cflag);
  }

  testing::TempDir dir_;
  int master_ = -1;
  int slave_ = -1;
  termios before_{};
  std::string seen_;
};

TEST_F(ConsoleCliTest, TypedCommandsReachTheGuestAndTheEscapeKeyStopsTheVm) {
  auto kvmrun = BootOnTheTerminal();
  // Ctrl-C is the guest's on a raw terminal: it interrupts the guest's command, not kvmrun.
  std::size_t from = seen_.size();
  Type(master_, "sleep 100\r");
  std::this_thread::sleep_for(500ms);
  Type(master_, "\x03");
  EXPECT_TRUE(ReadUntil(master_, seen_, "guest# ", from, 60s)) << seen_;
  EXPECT_FALSE(kvmrun->Wait(0ms)) << seen_;

  from = seen_.size();
  Type(master_, "\x1d");
  const auto status = kvmrun->Wait(60s);
  ASSERT_TRUE(status) << seen_;
  ReadUntil(master_, seen_, "VM stopped", from, 5s);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 5) << *status << seen_;
  EXPECT_NE(
      seen_.find("the escape key (Ctrl-]): asking the guest to power off (up to 1.00 s), then "
                 "quitting QEMU; Ctrl-] again forces it"),
      std::string::npos)
      << seen_;
  ExpectModesRestored();
}

TEST_F(ConsoleCliTest, TheGuestPoweringOffEndsTheRunAndRestoresTheTerminal) {
  auto kvmrun = BootOnTheTerminal({"--escape-key", "^b"});
  Type(master_, "exit\r");
  const auto status = kvmrun->Wait(60s);
  ASSERT_TRUE(status) << seen_;
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status << seen_;
  ExpectModesRestored();
}

TEST_F(ConsoleCliTest, SigtermAndACrashOfKvmrunRestoreTheTerminal) {
  {
    auto kvmrun = BootOnTheTerminal();
    kill(kvmrun->pid(), SIGTERM);
    const auto status = kvmrun->Wait(60s);
    ASSERT_TRUE(status) << seen_;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 5) << *status << seen_;
    EXPECT_TRUE(ReadUntil(master_, seen_, "VM stopped: SIGTERM", 0, 5s)) << seen_;
    ExpectModesRestored();
  }
  {
    auto kvmrun = BootOnTheTerminal();
    kill(kvmrun->pid(), SIGABRT);
    const auto status = kvmrun->Wait(60s);
    ASSERT_TRUE(status) << seen_;
    EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGABRT) << *status;
    ExpectModesRestored();
  }
}

// A detached VM's console: attach, type, detach (the VM runs on), one client at a time, and a
// client learns when the VM ends.
TEST_F(ConsoleCliTest, KvmrunConsoleAttachesToADetachedVmAndDetaches) {
  testing::CommandOptions options;
  options.extra_env = Env();
  auto args = Args({"--name", "shell", "--detach"});
  ASSERT_EQ(testing::RunKvmrun(args, options).exit_code, 0);
  {
    KvmrunProcess client({"console", "shell"}, slave_, slave_, true, Env());
    ASSERT_TRUE(ReadUntil(master_, seen_, "Ctrl-] detaches", 0, 10s, &client)) << seen_;
    ASSERT_TRUE(ReadUntil(master_, seen_, "guest# ", 0, 120s, &client)) << seen_;
    std::size_t from = seen_.size();
    Type(master_, "echo $((6 * 7))\r");
    ASSERT_TRUE(ReadUntil(master_, seen_, "\n42\r", from, 60s, &client)) << seen_;
    ASSERT_TRUE(ReadUntil(master_, seen_, "guest# ", seen_.find("\n42\r", from), 60s, &client));

    const auto busy = testing::RunKvmrun({"console", "shell"}, options);
    EXPECT_EQ(busy.exit_code, 2) << busy.err;
    EXPECT_NE(busy.err.find("the console of VM 'shell' is in use"), std::string::npos) << busy.err;

    Type(master_, "\x1d");
    const auto status = client.Wait(10s);
    ASSERT_TRUE(status) << seen_;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status << seen_;
    ExpectModesRestored();
  }
  EXPECT_EQ(testing::RunKvmrun({"ps"}, options).out.find("shell") != std::string::npos, true)
      << "detaching leaves the VM running";
  {
    seen_.clear();
    KvmrunProcess client({"console", "shell"}, slave_, slave_, true, Env());
    ASSERT_TRUE(ReadUntil(master_, seen_, "Ctrl-] detaches", 0, 10s, &client)) << seen_;
    Type(master_, "\rexit\r");
    const auto status = client.Wait(60s);
    ASSERT_TRUE(status) << seen_;
    ReadUntil(master_, seen_, "the VM ended", 0, 5s);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << *status << seen_;
    EXPECT_NE(seen_.find("the console of VM 'shell' closed (the VM ended)"), std::string::npos)
        << seen_;
    ExpectModesRestored();
  }
  // Once the supervisor has gone too, the name is unknown.
  for (int i = 0;
       i < 100 && testing::RunKvmrun({"ps"}, options).out.find("shell") != std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  const auto gone = testing::RunKvmrun({"console", "shell"}, options);
  EXPECT_EQ(gone.exit_code, 2) << gone.err;
  EXPECT_NE(gone.err.find("no running VM called 'shell'"), std::string::npos) << gone.err;
}

// Without a terminal, input is taken only when asked for, and copied as it comes.
TEST_F(ConsoleCliTest, APipeFeedsTheConsoleWithConsoleInput) {
  int in[2], out[2];
  ASSERT_EQ(pipe(in), 0);
  ASSERT_EQ(pipe(out), 0);
  KvmrunProcess kvmrun(Args({"--console-input"}), in[0], out[1], false, Env());
  close(in[0]);
  close(out[1]);
  std::string seen;
  EXPECT_TRUE(ReadUntil(out[0], seen, "guest# ", 0, 120s, &kvmrun)) << seen;
  EXPECT_NE(seen.find("the console takes input\n"), std::string::npos) << seen;
  const std::size_t from = seen.size();
  Type(in[1], "echo $((6 * 7))\n");
  EXPECT_TRUE(ReadUntil(out[0], seen, "\n42\r", from, 60s, &kvmrun)) << seen;
  EXPECT_TRUE(ReadUntil(out[0], seen, "guest# ", seen.find("\n42\r", from), 60s, &kvmrun));
  Type(in[1], "exit\n");
  close(in[1]);
  const auto status = kvmrun.Wait(60s);
  ASSERT_TRUE(status) << seen;
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status << seen;
  close(out[0]);
}

}  // namespace
}  // namespace kvmrun

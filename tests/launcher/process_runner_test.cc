// The real process runner, on /bin/sh rather than QEMU: fast, and exact about descriptors and
// signals.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "kvmrun/error.h"
#include "kvmrun/process.h"
#include "launcher/run_capture.h"
#include "launcher/unique_fd.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;

SpawnRequest Shell(const std::string& script) {
  SpawnRequest r;
  r.executable = "/bin/sh";
  r.argv = {"/bin/sh", "-c", script};
  return r;
}

TEST(ProcessRunnerTest, ExitCodesSignalsAndOutput) {
  auto runner = MakeProcessRunner();
  CapturedRun run = RunAndCapture(*runner, Shell("echo out; echo err >&2; exit 3"), 10s);
  EXPECT_EQ(run.status, (ExitStatus{3, 0}));
  EXPECT_EQ(run.out, "out\n");
  EXPECT_EQ(run.err, "err\n");
  run = RunAndCapture(*runner, Shell("kill -TERM $$"), 10s);
  EXPECT_EQ(run.status, (ExitStatus{-1, SIGTERM}));
  EXPECT_EQ(run.status.ToString(), "killed by SIGTERM");
  EXPECT_EQ((ExitStatus{0, 0}).ToString(), "exit code 0");
}

TEST(ProcessRunnerTest, ArgumentsPassVerbatimWithoutAShell) {
  auto runner = MakeProcessRunner();
  SpawnRequest r;
  r.executable = "/bin/echo";
  r.argv = {"/bin/echo", "a b", "$HOME", "'q'", "x;y"};
  EXPECT_EQ(RunAndCapture(*runner, r, 10s).out, "a b $HOME 'q' x;y\n");
}

TEST(ProcessRunnerTest, OnlyInheritedDescriptorsReachTheChild) {
  auto runner = MakeProcessRunner();
  auto [inherit_r, inherit_w] = MakePipe();        // close-on-exec, asked to be inherited
  const int leaked = open("/dev/null", O_RDONLY);  // NOT close-on-exec, not asked for
  ASSERT_GE(leaked, 0);
  SpawnRequest r = Shell("ls /proc/$$/fd");
  r.inherit_fds = {inherit_w.get()};
  const CapturedRun run = RunAndCapture(*runner, r, 10s);
  close(leaked);
  const auto has = [&](int fd) {
    return ("\n" + run.out).find("\n" + std::to_string(fd) + "\n") != std::string::npos;
  };
  EXPECT_TRUE(has(inherit_w.get())) << run.out;
  EXPECT_FALSE(has(leaked)) << run.out;
  EXPECT_FALSE(has(inherit_r.get())) << run.out;
}

TEST(ProcessRunnerTest, ChildStartsWithDefaultSignalsInItsOwnGroup) {
  auto runner = MakeProcessRunner();
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, &old);
  auto child = runner->Spawn(Shell("sleep 30"));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_EQ(getpgid(child->pid()), child->pid());
  child->Signal(SIGTERM);
  const auto status = child->Wait(5s);
  ASSERT_TRUE(status.has_value()) << "SIGTERM blocked in kvmrun must not be blocked in QEMU";
  EXPECT_EQ(status->signal, SIGTERM);
}

TEST(ProcessRunnerTest, ChildDiesWithTheThreadThatStartedIt) {
  auto runner = MakeProcessRunner();
  std::unique_ptr<Process> child;
  std::thread([&] { child = runner->Spawn(Shell("sleep 30")); }).join();
  const auto status = child->Wait(5s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->signal, SIGKILL);
}

TEST(ProcessRunnerTest, DestroyingARunningProcessKillsAndReapsIt) {
  auto runner = MakeProcessRunner();
  pid_t pid;
  {
    auto child = runner->Spawn(Shell("sleep 30"));
    pid = child->pid();
    EXPECT_FALSE(child->Wait(0ms).has_value());
  }
  EXPECT_NE(kill(pid, 0), 0) << "gone, not a zombie";
}

TEST(ProcessRunnerTest, AMissingExecutableIsAnErrorNamingIt) {
  auto runner = MakeProcessRunner();
  SpawnRequest r;
  r.executable = "/nonexistent/qemu";
  r.argv = {"/nonexistent/qemu"};
  try {
    runner->Spawn(r);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cannot run /nonexistent/qemu: ", 0), 0u) << e.what();
  }
}

TEST(ProcessRunnerTest, ExitFdBecomesReadableOnExit) {
  auto runner = MakeProcessRunner();
  auto child = runner->Spawn(Shell("exit 0"));
  ASSERT_GE(child->exit_fd(), 0);
  EXPECT_EQ(child->Wait(5s), (ExitStatus{0, 0}));
}

}  // namespace
}  // namespace kvmrun

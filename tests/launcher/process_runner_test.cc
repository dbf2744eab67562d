// The real process runner, on /bin/sh rather than QEMU: fast, and exact about descriptors and
// signals.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "io/unique_fd.h"
#include "kvmrun/error.h"
#include "kvmrun/process.h"
#include "launcher/run_capture.h"

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

// The first line from `fd` (a grandchild may keep the pipe open: no waiting for EOF).
std::string ReadLine(int fd) {
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') line += c;
  return line;
}

// Whether `pid` is gone within two seconds (a process killed along with its group).
bool GoneSoon(pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    if (kill(pid, 0) != 0) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

std::string ReadAll(int fd) {
  std::string out;
  char buffer[256];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0)
    out.append(buffer, static_cast<std::size_t>(n));
  return out;
}

TEST(ProcessRunnerTest, PassedDescriptorsBecomeThreeFourAndNothingElseLeaks) {
  auto runner = MakeProcessRunner();
  auto [a_r, a_w] = MakePipe();  // close-on-exec, passed
  auto [b_r, b_w] = MakePipe();
  const int leaked = open("/dev/null", O_RDONLY);  // NOT close-on-exec, not passed
  ASSERT_GE(leaked, 0);
  SpawnRequest r = Shell("echo three >&3; echo four >&4; ls /proc/$$/fd");
  r.pass_fds = {b_w.get(), a_w.get()};
  const CapturedRun run = RunAndCapture(*runner, r, 10s);
  close(leaked);
  a_w.Reset();
  b_w.Reset();
  EXPECT_EQ(ReadAll(b_r.get()), "three\n");
  EXPECT_EQ(ReadAll(a_r.get()), "four\n");
  EXPECT_EQ(run.out, "0\n1\n2\n3\n4\n");  // the shell's descriptors, whatever ours were numbered
}

// With stdin and stdout closed in the parent, the next descriptors it creates are 0 and 1. The
// child must still get /dev/null, its stdout pipe and its passed socket where they belong,
// not whichever of them happens to hold which number.
TEST(ProcessRunnerTest, LayoutHoldsWhenTheParentsStandardDescriptorsAreClosed) {
  const int saved_in = dup(STDIN_FILENO);
  const int saved_out = dup(STDOUT_FILENO);
  ASSERT_GE(saved_in, 0);
  ASSERT_GE(saved_out, 0);
  close(STDIN_FILENO);
  close(STDOUT_FILENO);
  int pair[2];
  const int made = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair);  // takes 0 and 1
  std::string out, passed;
  CapturedRun run;
  if (made == 0) {
    auto runner = MakeProcessRunner();
    SpawnRequest r = Shell("read line; echo \"stdin:$line\"; echo socket >&3");
    r.pass_fds = {pair[1]};
    run = RunAndCapture(*runner, r, 10s);
    close(pair[1]);
    passed = ReadAll(pair[0]);
    close(pair[0]);
  }
  dup2(saved_in, STDIN_FILENO);
  dup2(saved_out, STDOUT_FILENO);
  close(saved_in);
  close(saved_out);
  ASSERT_EQ(made, 0);
  EXPECT_EQ(pair[0], 0);
  EXPECT_EQ(pair[1], 1);
  EXPECT_EQ(run.out, "stdin:\n");  // /dev/null, not the socket
  EXPECT_EQ(passed, "socket\n");
}

TEST(ProcessRunnerTest, SignalsReachTheWholeGroupAndLeftoversDieWithTheLeader) {
  auto runner = MakeProcessRunner();
  auto [r, w] = MakePipe();
  // A wrapper that leaves a grandchild behind, as a QEMU wrapper script may.
  SpawnRequest request = Shell("sleep 300 3>&- & echo $! >&3; exec sleep 301");
  request.pass_fds = {w.get()};
  auto child = runner->Spawn(request);
  w.Reset();
  const pid_t grandchild = std::stoi(ReadLine(r.get()));
  child->Signal(SIGTERM);
  ASSERT_TRUE(child->Wait(10s).has_value());
  EXPECT_TRUE(GoneSoon(grandchild)) << "grandchild " << grandchild << " outlived the group";
}

TEST(ProcessRunnerTest, AGrandchildLeftWhenTheChildExitsIsKilled) {
  auto runner = MakeProcessRunner();
  auto [r, w] = MakePipe();
  SpawnRequest request = Shell("sleep 300 3>&- & echo $! >&3; exit 0");
  request.pass_fds = {w.get()};
  auto child = runner->Spawn(request);
  w.Reset();
  const pid_t grandchild = std::stoi(ReadLine(r.get()));
  ASSERT_EQ(child->Wait(10s), (ExitStatus{0, 0}));
  EXPECT_TRUE(GoneSoon(grandchild)) << "grandchild " << grandchild << " was orphaned";
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

#if defined(__SANITIZE_THREAD__)  // GCC
#define KVMRUN_TEST_UNDER_TSAN 1
#elif defined(__has_feature)  // clang
#if __has_feature(thread_sanitizer)
#define KVMRUN_TEST_UNDER_TSAN 1
#endif
#endif

// A harness may start a VM on a worker thread that ends: the VM lives on.
TEST(ProcessRunnerTest, ChildOutlivesTheThreadThatStartedIt) {
  auto runner = MakeProcessRunner();
  std::unique_ptr<Process> child;
  std::thread([&] { child = runner->Spawn(Shell("sleep 30")); }).join();
  EXPECT_FALSE(child->Wait(500ms).has_value()) << "killed when its starting thread ended";
}

// ... but not the process: a process that ends (here by _exit, no destructors) takes its
// children with it.
TEST(ProcessRunnerTest, ChildDiesWithTheProcessThatStartedIt) {
#if defined(KVMRUN_TEST_UNDER_TSAN)
  // (ThreadSanitizer kills a child that starts a thread after a fork from a process with
  // several: true when other tests ran in this process first. ctest runs each test alone.)
  const auto threads = std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                                     std::filesystem::directory_iterator());
  if (threads > 1) GTEST_SKIP() << "ThreadSanitizer: this process already has threads";
#endif
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t helper = fork();
  if (helper == 0) {
    // A thread of the helper spawns, then ends, then the helper waits to be told to exit.
    pid_t pid = 0;
    std::thread([&] { pid = MakeProcessRunner()->Spawn(Shell("sleep 30"))->pid(); }).join();
    // (Destroying the Process kills the child: this one is leaked on purpose, by pid.)
    [[maybe_unused]] const ssize_t n = write(pipe_fds[1], &pid, sizeof(pid));
    _exit(0);
  }
  close(pipe_fds[1]);  // so that a helper that dies early is an end of file, not a hang
  pid_t pid = 0;
  ASSERT_EQ(read(pipe_fds[0], &pid, sizeof(pid)), static_cast<ssize_t>(sizeof(pid)));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(helper, &status, 0);
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  bool gone = false;
  while (!gone && std::chrono::steady_clock::now() < deadline) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string fields;
    std::getline(stat, fields);
    // Gone, or a zombie nobody has reaped yet (the state after the command's ")").
    gone = fields.empty() || fields.substr(fields.rfind(')') + 2, 1) == "Z";
    if (!gone) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(gone) << "sleep (pid " << pid << ") outlived the process that started it";
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

// The only file that includes Boost.Process.
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/process/v2/process.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "kvmrun/error.h"
#include "kvmrun/process.h"

extern char** environ;

namespace kvmrun {

std::string ExitStatus::ToString() const {
  if (signal != 0) {
    const char* name = sigabbrev_np(signal);
    return std::string("killed by SIG") + (name != nullptr ? name : std::to_string(signal));
  }
  return "exit code " + std::to_string(code);
}

namespace {

namespace bp = boost::process::v2;

// Runs in the child between fork and exec (Boost.Process calls on_exec_setup there). Only
// async-signal-safe calls: no allocation, no locks.
//
// The child's descriptors 0, 1, 2, 3... are `sources[0]`, `sources[1]`... In two steps, so that
// no source is overwritten before it is copied: first every source is duplicated above the
// highest target, then each copy is moved onto its target.
struct ChildSetup {
  const SpawnRequest& request;
  const char* const* envp;
  pid_t parent;
  std::vector<int>& sources;  // sized and filled before fork
  std::vector<int>& copies;   // same size; written in the child only

  bp::error_code on_setup(bp::posix::default_launcher& launcher, const bp::filesystem::path&,
                          const char* const*) {
    launcher.env = envp;
    // Keep the child's 3, 4, ... out of Boost's close-everything-else step.
    for (std::size_t i = 3; i < sources.size(); ++i) {
      launcher.fd_whitelist.push_back(static_cast<int>(i));
    }
    return {};
  }

  bp::error_code on_exec_setup(bp::posix::default_launcher&, const bp::filesystem::path&,
                               const char* const*) {
    if (request.die_with_parent) {
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return {errno, bp::system_category()};
      if (getppid() != parent) _exit(125);  // the parent died before the line above
    }
    if (request.own_process_group) setpgid(0, 0);
    // kvmrun may block or ignore signals (to handle SIGINT itself, to survive SIGPIPE); QEMU
    // must start with the defaults, or the shutdown ladder's SIGTERM would not reach it.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    umask(request.umask);
    const int count = static_cast<int>(sources.size());
    for (int i = 0; i < count; ++i) {
      copies[i] = fcntl(sources[i], F_DUPFD_CLOEXEC, count);
      if (copies[i] < 0) return {errno, bp::system_category()};
    }
    for (int i = 0; i < count; ++i) {
      if (dup2(copies[i], i) < 0) return {errno, bp::system_category()};  // clears CLOEXEC
    }
    // Nothing else leaks into QEMU: everything above the layout is closed at exec (Boost also
    // closes it before exec; this holds even if it did not).
    syscall(SYS_close_range, static_cast<unsigned>(count), ~0U, CLOSE_RANGE_CLOEXEC);
    return {};
  }
};

// Occupies every free descriptor below `limit` (with /dev/null) while it lives. Spawning
// creates descriptors of its own (Boost's exec-error pipe); they must not take a number the
// child's layout needs, or the layout would overwrite them.
class LowFdReservation {
 public:
  explicit LowFdReservation(int limit) {
    while (true) {
      const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) return;
      if (fd >= limit) {
        close(fd);
        return;
      }
      held_.push_back(fd);
    }
  }
  ~LowFdReservation() {
    for (int fd : held_) close(fd);
  }
  LowFdReservation(const LowFdReservation&) = delete;
  LowFdReservation& operator=(const LowFdReservation&) = delete;

 private:
  std::vector<int> held_;
};

class RealProcess : public Process {
 public:
  RealProcess(pid_t pid, bool group)
      : pid_(pid), group_(group), pidfd_(static_cast<int>(syscall(SYS_pidfd_open, pid, 0))) {}

  ~RealProcess() override {
    if (!status_) {
      Send(SIGKILL);
      Reap(true);
    }
    if (pidfd_ >= 0) close(pidfd_);
  }

  pid_t pid() const override { return pid_; }
  int exit_fd() const override { return pidfd_; }

  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!status_ && !Reap(false)) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left <= std::chrono::milliseconds::zero()) break;
      if (pidfd_ >= 0) {
        pollfd p{pidfd_, POLLIN, 0};
        poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1 << 30)));
      } else {
        std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(5)));
      }
    }
    return status_;
  }

  void Signal(int signal) override {
    if (!status_) Send(signal);
  }

 private:
  void Send(int signal) {
    // The group may not exist yet (the child has not reached setpgid): the child alone then.
    if (!group_ || kill(-pid_, signal) != 0) kill(pid_, signal);
  }

  // Collects the exit status if the child is gone; blocks when `block`.
  bool Reap(bool block) {
    int status = 0;
    pid_t r;
    do {
      r = waitpid(pid_, &status, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r != pid_) return false;
    status_ =
        WIFSIGNALED(status) ? ExitStatus{-1, WTERMSIG(status)} : ExitStatus{WEXITSTATUS(status), 0};
    // What is left of its group is orphaned now. The group's id cannot have been reused: Linux
    // keeps a pid reserved while it is the id of a group with members.
    if (group_) kill(-pid_, SIGKILL);
    return true;
  }

  pid_t pid_;
  bool group_;
  int pidfd_;
  std::optional<ExitStatus> status_;
};

// The thread that forks every child that must die with kvmrun. PR_SET_PDEATHSIG fires when
// the *thread* that forked the child exits, not the process: a harness that starts a VM on a
// worker thread would lose it when that thread ends. This thread lives as long as the
// process, so the children die with the process and only with it. It blocks every signal
// (signals are for the threads that handle them). After a fork the child process has no such
// thread: the first spawn there starts its own.
class Spawner {
 public:
  static Spawner& ForThisProcess() {
    static std::mutex mu;
    static Spawner* spawner = nullptr;
    std::lock_guard lock(mu);
    if (spawner == nullptr || spawner->pid_ != getpid()) spawner = new Spawner();  // never freed
    return *spawner;
  }

  // Runs `job` on the spawner thread and returns what it made, or throws Error with what it
  // threw. (The message crosses threads, not the exception object: its reference-counted
  // string would be freed on one thread while read on the other.)
  std::unique_ptr<Process> Run(std::function<std::unique_ptr<Process>()> job) {
    std::packaged_task<Outcome()> task([job = std::move(job)]() -> Outcome {
      try {
        return {job(), ""};
      } catch (const std::exception& e) {
        return {nullptr, e.what()};
      }
    });
    auto result = task.get_future();
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
    Outcome outcome = result.get();
    if (!outcome.process) throw Error(outcome.error);
    return std::move(outcome.process);
  }

 private:
  Spawner() : pid_(getpid()) {
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);  // inherited by the new thread
    std::thread([this] { Loop(); }).detach();
    pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  }

  [[noreturn]] void Loop() {
    while (true) {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return !queue_.empty(); });
      auto task = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      task();
    }
  }

  struct Outcome {
    std::unique_ptr<Process> process;
    std::string error;
  };

  const pid_t pid_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<Outcome()>> queue_;
};

class BoostProcessRunner : public ProcessRunner {
 public:
  std::unique_ptr<Process> Spawn(const SpawnRequest& request) override {
    if (!request.die_with_parent) return SpawnHere(request);
    return Spawner::ForThisProcess().Run([this, &request] { return SpawnHere(request); });
  }

 private:
  std::unique_ptr<Process> SpawnHere(const SpawnRequest& request) {
    // The environment, built before fork (no allocation in the child).
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      const std::string name = entry.substr(0, entry.find('='));
      bool replaced = false;
      for (const std::string& extra : request.extra_env) {
        replaced = replaced || extra.compare(0, name.size() + 1, name + "=") == 0;
      }
      if (!replaced) env.push_back(entry);
    }
    env.insert(env.end(), request.extra_env.begin(), request.extra_env.end());
    std::vector<const char*> envp;
    for (const std::string& e : env) envp.push_back(e.c_str());
    envp.push_back(nullptr);

    const int layout_size =
        SpawnRequest::kFirstPassedFd + static_cast<int>(request.pass_fds.size());
    const LowFdReservation reservation(layout_size);
    const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0) throw Error(std::string("cannot open /dev/null: ") + std::strerror(errno));
    std::vector<int> sources = {null_fd, request.stdout_fd >= 0 ? request.stdout_fd : null_fd,
                                request.stderr_fd >= 0 ? request.stderr_fd : null_fd};
    sources.insert(sources.end(), request.pass_fds.begin(), request.pass_fds.end());
    std::vector<int> copies(sources.size(), -1);
    std::vector<std::string> args(request.argv.begin() + (request.argv.empty() ? 0 : 1),
                                  request.argv.end());
    boost::asio::io_context context;
    ChildSetup setup{request, envp.data(), getpid(), sources, copies};
    try {
      bp::process child(context.get_executor(), bp::filesystem::path(request.executable), args,
                        setup);
      close(null_fd);
      const pid_t pid = child.id();
      child.detach();  // kvmrun reaps it, through RealProcess
      return std::make_unique<RealProcess>(pid, request.own_process_group);
    } catch (const boost::system::system_error& e) {
      close(null_fd);
      throw Error("cannot run " + request.executable + ": " + e.code().message());
    }
  }
};

}  // namespace

std::unique_ptr<ProcessRunner> MakeProcessRunner() {
  return std::make_unique<BoostProcessRunner>();
}

namespace {

class RefusingRunner : public ProcessRunner {
 public:
  explicit RefusingRunner(std::string why) : why_(std::move(why)) {}
  std::unique_ptr<Process> Spawn(const SpawnRequest& request) override {
    throw UsageError("qemu", "'" + request.executable + "' was not run: " + why_);
  }

 private:
  std::string why_;
};

}  // namespace

std::unique_ptr<ProcessRunner> MakeRefusingRunner(std::string why) {
  return std::make_unique<RefusingRunner>(std::move(why));
}

}  // namespace kvmrun

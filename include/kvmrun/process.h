// The process seam: how kvmrun starts and watches QEMU. One real implementation
// (MakeProcessRunner, on Boost.Process) and fakes in tests, so lifecycle logic such as the
// shutdown ladder can be tested without a QEMU.
#ifndef KVMRUN_PROCESS_H_
#define KVMRUN_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kvmrun {

struct ExitStatus {
  int code = -1;   // the exit code when the process exited, else -1
  int signal = 0;  // the signal that killed it, else 0

  bool Success() const { return signal == 0 && code == 0; }
  std::string ToString() const;  // "exit code 1", "killed by SIGKILL"

  friend bool operator==(const ExitStatus&, const ExitStatus&) = default;
};

struct SpawnRequest {
  std::string executable;              // absolute path; nothing is looked up on PATH, no shell
  std::vector<std::string> argv;       // argv[0] included
  std::vector<std::string> extra_env;  // "NAME=value", added to (or replacing in) the environment
  // Descriptors the child gets as 3, 4, 5...: pass_fds[i] becomes descriptor
  // kFirstPassedFd + i in the child, whatever its number is here. The child's layout never
  // depends on which numbers happen to be free in this process (with fd 1 closed here, a
  // socket created here may well be fd 1). Every other descriptor of this process is closed
  // in the child, whatever its close-on-exec flag says.
  std::vector<int> pass_fds;
  static constexpr int kFirstPassedFd = 3;
  int stdout_fd = -1;  // -1: /dev/null. stdin is always /dev/null.
  int stderr_fd = -1;  // -1: /dev/null
  // The child is killed (SIGKILL) when this process exits, however it exits, so a kvmrun
  // killed with SIGKILL leaves no QEMU behind (PR_SET_PDEATHSIG, set from a thread that lives
  // as long as the process: the thread that called Spawn may end without taking the child).
  bool die_with_parent = true;
  // The child leads its own process group, so a terminal's Ctrl-C reaches kvmrun only and
  // kvmrun decides how QEMU stops. Signals then go to the whole group, and whatever is left
  // of the group when the child has exited is killed: a wrapper script's grandchildren, or
  // helpers QEMU forked, cannot outlive it (a process that leaves the group with setsid, as
  // -daemonize does, can; kvmrun refuses such options).
  bool own_process_group = true;
  // Files and sockets the child creates are private to the user: 0600 (QEMU's public QMP
  // socket among them). QEMU creates no directories.
  mode_t umask = 0177;
};

class Process {
 public:
  // Destroying a Process whose child still runs kills it (SIGKILL) and reaps it.
  virtual ~Process() = default;

  virtual pid_t pid() const = 0;
  // Waits up to `timeout` (0: just check) and returns the exit status once the child exited.
  virtual std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout) = 0;
  // A descriptor that becomes readable when the child exits (for poll), or -1.
  virtual int exit_fd() const = 0;
  // Sends `signal` to the child (to its whole process group when it leads one), unless the
  // child was already reaped.
  virtual void Signal(int signal) = 0;
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  // Starts the child. Throws Error naming the executable and the reason when it cannot run
  // (missing, not executable, not a valid binary).
  virtual std::unique_ptr<Process> Spawn(const SpawnRequest& request) = 0;
};

// The real runner (Boost.Process v2).
std::unique_ptr<ProcessRunner> MakeProcessRunner();

// A runner that runs nothing: Spawn throws UsageError("qemu", why) naming the executable. For
// planning a VM (PlanVm) without running a program someone else chose: what the probes need
// then comes from the probe cache, or the plan fails saying so.
std::unique_ptr<ProcessRunner> MakeRefusingRunner(std::string why);

}  // namespace kvmrun

#endif  // KVMRUN_PROCESS_H_

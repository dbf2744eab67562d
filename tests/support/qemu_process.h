// A QEMU started by a test, not by kvmrun: paused under TCG, with a QMP Unix socket in a
// private temporary directory. Killed and cleaned up when the object goes away.
#ifndef KVMRUN_TESTS_SUPPORT_QEMU_PROCESS_H_
#define KVMRUN_TESTS_SUPPORT_QEMU_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kvmrun::testing {

// A private directory under $TMPDIR (default /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A child process of the test (stdout and stderr to a log file), killed and reaped on
// destruction if still running.
class ScopedProcess {
 public:
  ScopedProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                const std::string& log_path);
  ~ScopedProcess();
  ScopedProcess(const ScopedProcess&) = delete;
  ScopedProcess& operator=(const ScopedProcess&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int signal);
  // The exit status (128 + signal when killed) once it exited within `timeout`.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);
  std::string Output() const;

 private:
  std::string log_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Pids of running processes (not zombies) whose command line contains `arg` exactly.
std::vector<pid_t> ProcessesWithArgument(const std::string& arg);
// The same, only QEMUs (argv[0] names a qemu-system binary): a VM's -name is also in the argv
// of the kvmrun that started it.
std::vector<pid_t> QemusWithArgument(const std::string& arg);
// The QEMUs of the VM kvmrun named `name` (-name guest=NAME; a name without commas).
inline std::vector<pid_t> QemusOfVm(const std::string& name) {
  return QemusWithArgument("guest=" + name);
}

class ScopedQemu {
 public:
  // Runs `qemu -S -nodefaults -display none -accel tcg` with a QMP socket and `extra_args`,
  // with `env` ("NAME=value") added to its environment, and waits for the socket to appear.
  ScopedQemu(const std::string& qemu, const std::vector<std::string>& extra_args,
             const std::vector<std::string>& env = {});
  ~ScopedQemu() = default;
  ScopedQemu(const ScopedQemu&) = delete;
  ScopedQemu& operator=(const ScopedQemu&) = delete;

  const std::string& socket_path() const { return socket_; }
  pid_t pid() const { return process_->pid(); }
  // The exit status once QEMU exited within `timeout`; nullopt if it is still running.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout) {
    return process_->WaitExit(timeout);
  }
  // Everything QEMU wrote to stdout and stderr so far.
  std::string Output() const { return process_->Output(); }

 private:
  TempDir dir_;
  std::string socket_;
  std::unique_ptr<ScopedProcess> process_;
};

// How many descriptors this process has open (for leak checks).
int OpenFdCount();
// The pids of this process's children, space-separated ("" when it has none).
std::string ChildPids();

// True when a process with this pid exists (and is not a zombie of ours already reaped).
bool ProcessExists(pid_t pid);

}  // namespace kvmrun::testing

#endif  // KVMRUN_TESTS_SUPPORT_QEMU_PROCESS_H_

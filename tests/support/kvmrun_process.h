// The kvmrun CLI as a process a test talks to while it runs: on a pseudo-terminal the test
// holds (as a person's terminal) or on pipes, with its output read as it comes.
#ifndef KVMRUN_TESTS_SUPPORT_KVMRUN_PROCESS_H_
#define KVMRUN_TESTS_SUPPORT_KVMRUN_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace kvmrun::testing {

class KvmrunProcess {
 public:
  // Starts kvmrun with `args`, `input` as stdin and `output` as stdout and stderr, `env`
  // ("NAME=value") added. With `terminal`, `input` is a terminal that becomes the controlling
  // terminal of kvmrun's new session (kvmrun is then its foreground process group).
  KvmrunProcess(const std::vector<std::string>& args, int input, int output, bool terminal,
                const std::vector<std::string>& env);
  ~KvmrunProcess();  // SIGKILL if still running
  KvmrunProcess(const KvmrunProcess&) = delete;
  KvmrunProcess& operator=(const KvmrunProcess&) = delete;

  pid_t pid() const { return pid_; }
  // The wait status (waitpid's), or nullopt if kvmrun still runs after `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Reads `fd` into `seen` until it contains `text` at or after `from`, `timeout` passes, or
// `process` (when given) has exited; returns whether `text` was seen.
bool ReadUntil(int fd, std::string& seen, const std::string& text, std::size_t from,
               std::chrono::milliseconds timeout, KvmrunProcess* process = nullptr);

// Writes all of `text` to `fd` (keys on a terminal, bytes on a pipe); false when it could not.
bool Type(int fd, const std::string& text);

}  // namespace kvmrun::testing

#endif  // KVMRUN_TESTS_SUPPORT_KVMRUN_PROCESS_H_

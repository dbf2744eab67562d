// `kvmrun run --detach`: the VM's supervisor becomes a child of this process, in a session of
// its own with stdin and stdout on /dev/null and stderr on a log file, and owns the VM exactly
// as a foreground run does. The parent waits until the child says the VM runs (after the
// clocks were verified) or why it could not start, prints that, and exits accordingly.
#ifndef KVMRUN_CLI_DETACH_H_
#define KVMRUN_CLI_DETACH_H_

#include <string>

namespace kvmrun::cli {

class Detachment {
 public:
  // Forks, which must happen before any thread is started. Returns in the child at once
  // (is_child()), and in the parent once the child has reported or died.
  static Detachment Fork(const std::string& child_log);

  bool is_child() const { return child_; }
  // The parent's exit code: 0 when the VM runs, the child's code when it failed to start.
  int parent_exit_code() const { return parent_exit_code_; }

  // The child's report; the parent prints `message` (stdout when started, stderr otherwise).
  void Started(const std::string& message);
  void Failed(int exit_code, const std::string& message);

 private:
  void Report(int exit_code, const std::string& message);
  bool child_ = false;
  int report_fd_ = -1;
  int parent_exit_code_ = 0;
};

}  // namespace kvmrun::cli

#endif  // KVMRUN_CLI_DETACH_H_

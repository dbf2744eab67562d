#include "cli/detach.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <string_view>
#include <thread>

#include "cli/cli_common.h"
#include "kvmrun/error.h"

namespace kvmrun::cli {
namespace {

// Waits up to `limit` for the child `pid` to exit; leaves it be after that.
void ReapWithin(pid_t pid, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (waitpid(pid, nullptr, WNOHANG) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

Detachment Detachment::Fork(const std::string& child_log) {
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    throw Error(std::string("cannot create a pipe: ") + std::strerror(errno));
  }
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = fork();
  if (pid < 0) throw Error(std::string("cannot fork the supervisor: ") + std::strerror(errno));
  Detachment d;
  if (pid == 0) {
    close(report[0]);
    d.child_ = true;
    d.report_fd_ = report[1];
    setsid();  // the terminal's Ctrl-C and hang-up are no longer its business
    const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    const int log_fd = open(child_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    dup2(null_fd, STDIN_FILENO);
    dup2(null_fd, STDOUT_FILENO);
    dup2(log_fd >= 0 ? log_fd : null_fd, STDERR_FILENO);
    if (log_fd >= 0) close(log_fd);
    close(null_fd);
    return d;
  }
  close(report[1]);
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = read(report[0], buffer, sizeof(buffer))) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  close(report[0]);
  // "<exit code>\n<message>"; nothing at all when the child died before it could report.
  const std::size_t newline = text.find('\n');
  if (newline == std::string::npos) {
    std::cerr << "kvmrun run: the VM's supervisor ended before the VM ran (see " << child_log
              << ")\n";
    ReapWithin(pid, std::chrono::seconds(10));
    d.parent_exit_code_ = kExitFailure;
    return d;
  }
  d.parent_exit_code_ = std::atoi(text.substr(0, newline).c_str());
  // A supervisor that could not start the VM is on its way out, releasing the VM's name: wait
  // for it, so that nothing of the failed start is left when this command returns.
  if (d.parent_exit_code_ != 0) ReapWithin(pid, std::chrono::seconds(10));
  (d.parent_exit_code_ == 0 ? std::cout : std::cerr) << text.substr(newline + 1) << std::flush;
  return d;
}

void Detachment::Started(const std::string& message) { Report(0, message); }

void Detachment::Failed(int exit_code, const std::string& message) { Report(exit_code, message); }

void Detachment::Report(int exit_code, const std::string& message) {
  if (report_fd_ < 0) return;
  const std::string text = std::to_string(exit_code) + "\n" + message;
  std::string_view left = text;
  while (!left.empty()) {
    const ssize_t n = write(report_fd_, left.data(), left.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    left.remove_prefix(static_cast<std::size_t>(n));
  }
  close(report_fd_);  // the parent reads to the end: this lets it go
  report_fd_ = -1;
}

}  // namespace kvmrun::cli

#include "tests/support/kvmrun_process.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

namespace kvmrun::testing {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

KvmrunProcess::KvmrunProcess(const std::vector<std::string>& args, int input, int output,
                             bool terminal, const std::vector<std::string>& env) {
  std::vector<std::string> argv = {KVMRUN_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw;  // made before fork: the child only calls what exec needs
  for (std::string& a : argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    setsid();
    if (terminal) ioctl(input, TIOCSCTTY, 0);
    dup2(input, 0);
    dup2(output, 1);
    dup2(output, 2);
    for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
    execv(raw[0], raw.data());
    _exit(127);
  }
}

KvmrunProcess::~KvmrunProcess() {
  if (pid_ > 0 && !status_) {
    kill(pid_, SIGKILL);
    Wait(10s);
  }
}

std::optional<int> KvmrunProcess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!status_ && Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      status_ = status;
    } else {
      std::this_thread::sleep_for(20ms);
    }
  }
  return status_;
}

bool ReadUntil(int fd, std::string& seen, const std::string& text, std::size_t from,
               std::chrono::milliseconds timeout, KvmrunProcess* process) {
  const auto deadline = Clock::now() + timeout;
  while (seen.find(text, from) == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= 0ms) return false;
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::min(left, 200ms).count())) <= 0) {
      if (process != nullptr && process->Wait(0ms)) return false;
      continue;
    }
    char buffer[4096];
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) return false;
    seen.append(buffer, static_cast<std::size_t>(n));
  }
  return true;
}

bool Type(int fd, const std::string& text) {
  return write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

}  // namespace kvmrun::testing

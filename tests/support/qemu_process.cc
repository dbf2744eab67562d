#include "tests/support/qemu_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "kvmrun/error.h"
#include "kvmrun/qmp_transport.h"
#include "launcher/qemu_install.h"

extern char** environ;

namespace kvmrun::testing {

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/kvmrun-test-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ScopedProcess::ScopedProcess(const std::vector<std::string>& argv,
                             const std::vector<std::string>& env, const std::string& log_path)
    : log_(log_path) {
  std::vector<std::string> args_copy = argv;
  std::vector<char*> args;
  for (auto& a : args_copy) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.insert(env_strings.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const int log_fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  pid_ = fork();
  if (pid_ == 0) {
    const int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execvpe(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(log_fd);
  if (pid_ < 0) throw std::runtime_error("fork failed");
}

ScopedProcess::~ScopedProcess() {
  if (!status_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
}

void ScopedProcess::Signal(int signal) {
  if (!status_) kill(pid_, signal);
}

std::optional<int> ScopedProcess::WaitExit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!status_) {
    int status;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status_;
}

std::string ScopedProcess::Output() const {
  std::ifstream in(log_);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

ScopedQemu::ScopedQemu(const std::string& qemu, const std::vector<std::string>& extra_args,
                       const std::vector<std::string>& env)
    : socket_(dir_.path() + "/qmp.sock") {
  std::vector<std::string> argv = {qemu,
                                   "-S",
                                   "-nodefaults",
                                   "-display",
                                   "none",
                                   "-accel",
                                   "tcg",
                                   "-chardev",
                                   "socket,id=qmp,path=" + socket_ + ",server=on,wait=off",
                                   "-mon",
                                   "chardev=qmp,mode=control"};
  // A QEMU unpacked outside /usr needs its own firmware and modules, as kvmrun gives them.
  for (const std::string& dir : FirmwareDirsFor(qemu)) argv.insert(argv.end(), {"-L", dir});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  std::vector<std::string> full_env = EnvironmentFor(qemu);
  full_env.insert(full_env.end(), env.begin(), env.end());
  process_ = std::make_unique<ScopedProcess>(argv, full_env, dir_.path() + "/qemu.log");
  // Ready when a connection is accepted (the socket file exists a moment before QEMU listens
  // on it). A QEMU that rejected its arguments exits instead.
  for (int i = 0; i < 1000; ++i) {
    if (process_->WaitExit(std::chrono::milliseconds(0))) return;
    try {
      ConnectQmpSocket(socket_);  // closed at once; QEMU goes back to listening
      return;
    } catch (const Error&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

namespace {

std::vector<pid_t> FindProcesses(const std::string& arg, bool qemu_only) {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (qemu_only) {
      const std::string argv0 = cmdline.substr(0, cmdline.find('\0'));
      if (argv0.find("qemu-system") == std::string::npos) continue;
    }
    std::string current;
    bool found = false;
    for (char c : cmdline) {
      if (c == '\0') {
        found = found || current == arg;
        current.clear();
      } else {
        current += c;
      }
    }
    const pid_t pid = std::stoi(name);
    if (found && ProcessExists(pid)) pids.push_back(pid);
  }
  return pids;
}

}  // namespace

std::vector<pid_t> ProcessesWithArgument(const std::string& arg) {
  return FindProcesses(arg, false);
}
std::vector<pid_t> QemusWithArgument(const std::string& arg) { return FindProcesses(arg, true); }

int OpenFdCount() {
  int count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++count;
  }
  return count;
}

std::string ChildPids() {
  std::string all;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream in(task.path() / "children");
    std::string line;
    std::getline(in, line);
    all += line;
  }
  return all;
}

bool ProcessExists(pid_t pid) {
  if (kill(pid, 0) != 0) return false;
  // A zombie still "exists" for kill(); treat it as gone.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

}  // namespace kvmrun::testing

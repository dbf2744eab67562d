#include "launcher/swtpm.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "io/safe_file.h"
#include "kvmrun/error.h"
#include "kvmrun/qemu_command.h"
#include "launcher/qemu_install.h"

namespace kvmrun {
namespace {

using Clock = std::chrono::steady_clock;

bool Listens(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool ok = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

std::string LogTail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  constexpr std::size_t kTail = 2000;
  return all.size() > kTail ? all.substr(all.size() - kTail) : all;
}

}  // namespace

std::vector<std::string> SwtpmArgv(const std::string& swtpm, const SwtpmPlan& plan) {
  return {swtpm,
          "socket",
          "--tpm2",
          "--tpmstate",
          "dir=" + EscapeQemuOptionValue(plan.state_dir) + ",mode=0600",
          "--ctrl",
          "type=unixio,path=" + EscapeQemuOptionValue(plan.socket) + ",mode=0600",
          "--log",
          "file=" + EscapeQemuOptionValue(plan.log) + ",level=1",
          "--terminate"};
}

std::unique_ptr<Process> StartSwtpm(ProcessRunner& runner, const SwtpmPlan& plan,
                                    StopRequests* stop, std::chrono::milliseconds timeout) {
  const std::string swtpm = FindExecutable("swtpm");
  if (swtpm.empty()) {
    throw UsageError("tpm", "swtpm is not installed, and a TPM needs it (apt-get install swtpm)");
  }
  // The TPM's state is the VM's secrets (keys the guest sealed): a directory of this user's
  // that nobody else can write, 0700 (EnsureSafeDir).
  EnsureSafeDir(plan.state_dir, DirMode::kPrivate);
  SpawnRequest request;
  request.executable = swtpm;
  request.argv = SwtpmArgv(swtpm, plan);
  std::unique_ptr<Process> process = runner.Spawn(request);
  const auto deadline = Clock::now() + timeout;
  while (!Listens(plan.socket)) {
    if (auto status = process->Wait(std::chrono::milliseconds(0))) {
      throw VmError("swtpm exited (" + status->ToString() + ") before it listened on " +
                        plan.socket + "; its log: " + LogTail(plan.log),
                    request.argv);
    }
    if (Clock::now() > deadline) {
      throw VmError("swtpm did not listen on " + plan.socket + " within " +
                        std::to_string(timeout.count()) + " ms; its log: " + LogTail(plan.log),
                    request.argv);
    }
    ThrowIfStopRequested(stop, "while swtpm was starting");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return process;
}

}  // namespace kvmrun

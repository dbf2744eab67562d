#include "tests/support/fake_qemu.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <string_view>

#include "kvmrun/qemu_command.h"

namespace kvmrun::testing {

struct FakeQemuRunner::State {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<ExitStatus> status;
  std::vector<std::string> commands;
  std::vector<int> signals;
  int exit_event = eventfd(0, EFD_CLOEXEC);
  int qmp_fd = -1;
  int console_fd = -1;
  int stop_event = eventfd(0, EFD_CLOEXEC);

  ~State() {
    close(exit_event);
    close(stop_event);
    if (qmp_fd >= 0) close(qmp_fd);
    if (console_fd >= 0) close(console_fd);
  }

  void Exit(ExitStatus s) {
    {
      std::lock_guard lock(mu);
      if (status) return;
      status = s;
      // Like a real exit: every descriptor QEMU held closes.
      if (qmp_fd >= 0) shutdown(qmp_fd, SHUT_RDWR);
      if (console_fd >= 0) shutdown(console_fd, SHUT_RDWR);
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(exit_event, &one, sizeof(one));
    n = write(stop_event, &one, sizeof(one));
    cv.notify_all();
  }
};

namespace {

class FakeProcess : public Process {
 public:
  FakeProcess(std::shared_ptr<void> state,
              std::function<std::optional<ExitStatus>(std::chrono::milliseconds)> wait,
              std::function<void(int)> signal, int exit_fd)
      : state_(std::move(state)),
        wait_(std::move(wait)),
        signal_(std::move(signal)),
        exit_fd_(exit_fd) {}
  ~FakeProcess() override { signal_(SIGKILL); }
  pid_t pid() const override { return 999999; }
  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout) override {
    return wait_(timeout);
  }
  int exit_fd() const override { return exit_fd_; }
  void Signal(int signal) override { signal_(signal); }

 private:
  std::shared_ptr<void> state_;
  std::function<std::optional<ExitStatus>(std::chrono::milliseconds)> wait_;
  std::function<void(int)> signal_;
  int exit_fd_;
};

// The number after "id=<chardev>,fd=" in the argv.
// The descriptor of ours that the child would see under the number the argv gives `chardev`.
int PassedFd(const SpawnRequest& request, const std::string& chardev) {
  const std::string marker = "socket,id=" + chardev + ",fd=";
  for (const std::string& arg : request.argv) {
    if (arg.rfind(marker, 0) != 0) continue;
    const std::size_t index = std::stoul(arg.substr(marker.size())) - SpawnRequest::kFirstPassedFd;
    return index < request.pass_fds.size() ? request.pass_fds[index] : -1;
  }
  return -1;
}

void Send(int fd, const nlohmann::json& message) {
  const std::string line = message.dump() + "\r\n";
  [[maybe_unused]] const ssize_t n = write(fd, line.data(), line.size());
}

nlohmann::json Event(const std::string& name, nlohmann::json data = nullptr) {
  nlohmann::json e = {{"event", name}, {"timestamp", {{"seconds", 1}, {"microseconds", 0}}}};
  if (!data.is_null()) e["data"] = data;
  return e;
}

// The path QEMU would listen on for the guest agent's chardev, or "".
std::string AgentSocketPath(const SpawnRequest& request) {
  for (const std::string& arg : request.argv) {
    const std::size_t path = arg.find(",path=");
    if (arg.rfind(std::string("socket,id=") + kAgentChardevId + ",", 0) != 0 ||
        path == std::string::npos) {
      continue;
    }
    const std::size_t end = arg.find(",server=on", path);
    return arg.substr(path + 6, end == std::string::npos ? end : end - path - 6);
  }
  return "";
}

int Listen(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 4) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Waits for `fd` to be readable; false when `stop_event` fired first (or poll failed).
bool Readable(int fd, int stop_event) {
  pollfd fds[2] = {{fd, POLLIN, 0}, {stop_event, POLLIN, 0}};
  return poll(fds, 2, -1) > 0 && (fds[1].revents & POLLIN) == 0;
}

// Reads JSON commands, one per line, from `fd` and hands each to `answer` until the peer
// closes, `stop_event` fires or `answer` returns false.
void ServeLines(int fd, int stop_event, const std::function<bool(const nlohmann::json&)>& answer) {
  std::string buffer;
  char chunk[4096];
  ssize_t n = 0;
  while (Readable(fd, stop_event) && (n = read(fd, chunk, sizeof(chunk))) > 0) {
    buffer.append(chunk, static_cast<std::size_t>(n));
    std::size_t newline;
    while ((newline = buffer.find('\n')) != std::string::npos) {
      const nlohmann::json command = nlohmann::json::parse(buffer.substr(0, newline));
      buffer.erase(0, newline + 1);
      if (!answer(command)) return;
    }
  }
}

// A qemu-ga for the tests: one client at a time, as QEMU serves the port.
void ServeAgent(int listen_fd, int stop_event, double offset_s) {
  while (Readable(listen_fd, stop_event)) {
    const int client = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    ServeLines(client, stop_event, [client, offset_s](const nlohmann::json& command) {
      const std::string name = command.value("execute", "");
      const nlohmann::json id = command.value("id", nlohmann::json());
      if (name == "guest-sync-delimited") {
        [[maybe_unused]] const ssize_t w = write(client, "\xff", 1);
        Send(client, {{"return", command["arguments"]["id"]}});
      } else if (name == "guest-get-time") {
        timespec now{};
        clock_gettime(CLOCK_REALTIME, &now);
        const double ns = static_cast<double>(now.tv_sec) * 1e9 + static_cast<double>(now.tv_nsec) +
                          offset_s * 1e9;
        Send(client, {{"return", static_cast<std::int64_t>(ns)}, {"id", id}});
      } else if (name == "guest-ping") {
        Send(client, {{"return", nlohmann::json::object()}, {"id", id}});
      } else {
        Send(client, {{"error", {{"class", "CommandNotFound"}, {"desc", name}}}, {"id", id}});
      }
      return true;
    });
    close(client);
  }
  close(listen_fd);
}

}  // namespace

FakeQemuRunner::~FakeQemuRunner() {
  if (state_) state_->Exit({-1, SIGKILL});
  if (server_.joinable()) server_.join();
  if (agent_.joinable()) agent_.join();
}

std::unique_ptr<Process> FakeQemuRunner::Spawn(const SpawnRequest& request) {
  request_ = request;
  state_ = std::make_shared<State>();
  auto state = state_;
  // Keep our own copies: the launcher closes its copies of QEMU's ends after spawning.
  const int qmp = PassedFd(request, "kvmrun-qmp");
  const int console = PassedFd(request, "kvmrun-console");
  state->qmp_fd = qmp >= 0 ? dup(qmp) : -1;
  state->console_fd = console >= 0 ? dup(console) : -1;
  const int err = request.stderr_fd >= 0 ? dup(request.stderr_fd) : -1;
  const FakeQemuBehaviour b = behaviour_;
  if (b.agent_offset_s) {
    const int listen_fd = Listen(AgentSocketPath(request));
    if (listen_fd >= 0) {
      agent_ = std::thread(ServeAgent, listen_fd, state->stop_event, *b.agent_offset_s);
    }
  }

  server_ = std::thread([state, b, err] {
    if (!b.stderr_text.empty() && err >= 0) {
      [[maybe_unused]] const ssize_t n = write(err, b.stderr_text.data(), b.stderr_text.size());
    }
    if (err >= 0) close(err);
    if (b.exit_at_start) {
      state->Exit({*b.exit_at_start, 0});
      return;
    }
    const int fd = state->qmp_fd;
    if (b.greet) {
      Send(fd, {{"QMP",
                 {{"version",
                   {{"qemu", {{"major", 7}, {"minor", 2}, {"micro", 0}}}, {"package", "fake"}}},
                  {"capabilities", nlohmann::json::array()}}}});
    }
    // As QEMU started with -S: paused ("prelaunch") until the first cont; then QMP stop/cont.
    bool paused = true;
    bool launched = false;
    bool pressed = false;  // system_powerdown came
    ServeLines(fd, state->stop_event, [&](const nlohmann::json& command) {
      const std::string name = command.value("execute", "");
      {
        std::lock_guard lock(state->mu);
        state->commands.push_back(name);
      }
      const nlohmann::json id = command.value("id", nlohmann::json());
      if (name == "cont" && !b.console_text.empty()) {
        [[maybe_unused]] const ssize_t w =
            write(state->console_fd, b.console_text.data(), b.console_text.size());
      }
      if (name == "stop" || name == "cont") {
        // As QEMU does: the event first (when the state changes), then the reply.
        if (paused != (name == "stop")) Send(fd, Event(name == "stop" ? "STOP" : "RESUME", {}));
        paused = name == "stop";
        launched = launched || name == "cont";
      }
      if (name == "query-status") {
        Send(fd, {{"return", {{"running", !paused}, {"status", !launched ? "prelaunch" : paused ? "paused" : "running"}}},
                  {"id", id}});
        return true;
      }
      Send(fd, {{"return", nlohmann::json::object()}, {"id", id}});
      // A guest acts on the power button only while it runs; pressed while it does not, it
      // powers off once resumed (the ACPI event stays pending), as in QEMU.
      if (name == "system_powerdown") pressed = true;
      if (pressed && b.powerdown_works && launched && !paused &&
          (name == "system_powerdown" || name == "cont")) {
        Send(fd, Event("SHUTDOWN", {{"guest", true}, {"reason", "guest-shutdown"}}));
        state->Exit({0, 0});
        return false;
      }
      if (name == "quit" && b.quit_works) {
        Send(fd, Event("SHUTDOWN", {{"guest", false}, {"reason", "host-qmp-quit"}}));
        state->Exit({0, 0});
        return false;
      }
      return true;
    });
  });

  const auto wait = [state](std::chrono::milliseconds timeout) -> std::optional<ExitStatus> {
    std::unique_lock lock(state->mu);
    state->cv.wait_for(lock, timeout, [&] { return state->status.has_value(); });
    return state->status;
  };
  const auto signal = [state, b](int sig) {
    {
      std::lock_guard lock(state->mu);
      if (state->status) return;
      state->signals.push_back(sig);
    }
    if (sig == SIGKILL || (sig == SIGTERM && b.sigterm_works)) state->Exit({-1, sig});
  };
  return std::make_unique<FakeProcess>(state, wait, signal, state->exit_event);
}

std::vector<std::string> FakeQemuRunner::commands() const {
  std::lock_guard lock(state_->mu);
  return state_->commands;
}

std::vector<int> FakeQemuRunner::signals() const {
  std::lock_guard lock(state_->mu);
  return state_->signals;
}

VmOptions FakeVmOptions(std::shared_ptr<FakeQemuRunner> runner, const std::string& dir,
                        std::vector<std::string>& notices) {
  using namespace std::chrono_literals;
  VmOptions options;
  options.runner = std::move(runner);
  options.capabilities = ShippedCapabilitiesFor("7.2");
  KvmDiagnosis no_kvm;
  no_kvm.problem = KvmProblem::kNoDeviceNode;
  no_kvm.summary = "no /dev/kvm device node";
  options.kvm_diagnosis = no_kvm;
  options.runtime_base = dir;
  options.cache_dir = dir + "/cache";
  options.qmp_timeout = 500ms;
  options.step_timeout = 200ms;
  options.on_notice = [&notices](std::string_view n) { notices.emplace_back(n); };
  return options;
}

}  // namespace kvmrun::testing

// kvmrun console: attach the terminal to a named VM's serial console (console_server.h).
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "cli/console_server.h"
#include "cli/terminal.h"
#include "kvmrun/error.h"
#include "kvmrun/vm_registry.h"

namespace kvmrun::cli {
namespace {

using namespace std::chrono_literals;

int Connect(const std::string& path, const std::string& name) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) throw Error("console socket path too long: " + path);
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) close(fd);
    throw Error("cannot connect to the console of VM '" + name + "' (" + path + "): " + why);
  }
  return fd;
}

// Reads the server's greeting line; returns what came after it (console output).
std::string ReadGreeting(int fd, const std::string& name) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (got.find('\n') == std::string::npos) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p = {fd, POLLIN, 0};
    if (left <= 0ms || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      throw Error("the supervisor of VM '" + name + "' did not answer on its console socket");
    }
    char buffer[4096];
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) throw Error("VM '" + name + "' closed its console socket");
    got.append(buffer, static_cast<std::size_t>(n));
  }
  const std::string line = got.substr(0, got.find('\n'));
  if (line == kConsoleGreetingOk) return got.substr(line.size() + 1);
  if (line.rfind(kConsoleGreetingBusy, 0) == 0) {
    throw UsageError("the console of VM '" + name +
                     "' is in use: " + line.substr(std::strlen(kConsoleGreetingBusy) + 1) +
                     " (one client at a time)");
  }
  throw Error("unexpected greeting on the console of VM '" + name + "': " + line);
}

// Whether QEMU `pid` has exited (gone, or a zombie its supervisor has not reaped yet).
bool QemuExited(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return true;
  const std::size_t paren = text.rfind(')');  // the name may hold spaces and parentheses
  if (paren == std::string::npos || paren + 2 >= text.size()) return false;
  const char state = text[paren + 2];
  return state == 'Z' || state == 'X';
}

// After the console connection ended: whether the VM did. The connection's end says nothing of
// the VM; the registry and QEMU's process do. QEMU closes the console as it exits and the
// supervisor then releases the name, on a loaded machine a moment later: up to 2 s are given
// for either to show.
bool VmEnded(const std::string& name) {
  for (int i = 0; i < 20; ++i) {
    const std::optional<NamedVm> vm = FindNamedVm(name);
    if (!vm || QemuExited(vm->qemu_pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace

int ConsoleCommand(const Args& args) {
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("escape-key", po::value<std::string>()->default_value("^]")->value_name("KEY"),
       "the key that detaches (the VM runs on): a control key in caret notation, or none")
      ("name", po::value<std::string>()->value_name("NAME"), "the VM");
  // clang-format on
  po::positional_options_description positional;
  positional.add("name", 1);
  const po::variables_map vm = Parse(args, options, &positional);
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun console NAME [--escape-key KEY]",
        "Attaches this terminal to the serial console of a named VM (kvmrun run --name NAME,\n"
        "--detach or not): what the guest writes appears here, starting with its last lines,\n"
        "and what is typed goes to the guest (raw mode: Ctrl-C is the guest's). Ctrl-]\n"
        "detaches; the VM runs on. One client at a time; a VM whose own terminal takes input\n"
        "has none. Input from a pipe is sent as it comes; SIGINT or SIGTERM ends the client.\n"
        "Exit: 0 detached, 1 the VM ended or its console closed, 2 no such VM or in use.\n\n"
        "Examples:\n"
        "  kvmrun run --os linux --kernel K --append console=ttyS0 --name web --detach\n"
        "  kvmrun console web",
        options, &positional);
    return kExitOk;
  }
  const std::string name = RequiredName(vm);
  const std::optional<char> escape = ParseEscapeKey(vm["escape-key"].as<std::string>());
  ValidateVmName(name);
  const NamedVm found = RunningVm(name);
  const std::string path = found.info.value("console_socket", "");
  if (path.empty()) {
    const std::string busy = found.info.value("console_busy", "it is still starting");
    throw UsageError("VM '" + name + "' serves no console: " + busy);
  }
  const int fd = Connect(path, name);
  std::string first;
  try {
    first = ReadGreeting(fd, name);
  } catch (...) {
    close(fd);
    throw;
  }
  const bool terminal = IsForegroundTerminal(STDIN_FILENO);
  std::cerr << "kvmrun: attached to the console of VM '" << name << "'"
            << (terminal && escape ? "; " + EscapeKeyName(*escape) + " detaches" : "") << std::endl;
  int code = kExitOk;
  std::string end;
  {
    std::optional<RawTerminal> raw;
    if (terminal) raw.emplace(STDIN_FILENO);
    int wake[2];
    if (pipe(wake) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
    std::atomic<bool> detached{false};
    std::atomic<bool> input_failed{false};
    ConsoleInput input(
        STDIN_FILENO, terminal ? escape : std::nullopt,
        [&, fd](std::string_view bytes) {
          if (!SendAll(fd, bytes, 10s)) {
            input_failed = true;
            [[maybe_unused]] const ssize_t n = write(wake[1], "x", 1);
            throw Error("the console connection failed");
          }
        },
        [&] {
          detached = true;
          [[maybe_unused]] const ssize_t n = write(wake[1], "x", 1);
        });
    std::string out = std::move(first);
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
    while (true) {
      if (!out.empty() && write(STDOUT_FILENO, out.data(), out.size()) < 0 && errno != EINTR) {
        break;
      }
      out.clear();
      if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
      if (fds[1].revents != 0) break;
      if (fds[0].revents == 0) continue;
      char buffer[65536];
      const ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        code = kExitFailure;
        end = VmEnded(name) ? "the console of VM '" + name + "' closed (the VM ended)"
                            : "the console connection of VM '" + name +
                                  "' was closed (input not delivered, said above); the VM runs on";
        break;
      }
      out.assign(buffer, static_cast<std::size_t>(n));
    }
    if (input_failed) {
      code = kExitFailure;
      end = "the console of VM '" + name + "' did not take the input for 10 s: some was not " +
            "sent; detached, the VM runs on";
    }
    if (detached) end = "detached from VM '" + name + "'; it runs on";
    close(wake[0]);
    close(wake[1]);
  }
  close(fd);
  std::cerr << "\nkvmrun: " << end << std::endl;
  return code;
}

}  // namespace kvmrun::cli

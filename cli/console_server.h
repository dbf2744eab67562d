// A named VM's console for `kvmrun console NAME`: its supervisor listens on console.sock in the
// VM's directory (vm_registry.h; the directory is the user's, mode 0700) and serves one client
// at a time.
//
// Protocol: on connecting, the client reads one line, "kvmrun-console ok" or "kvmrun-console
// busy <why>" (then the server closes). After "ok" the connection is the console both ways:
// the guest's output (the last few lines first, for context), and what the client sends
// typed on the guest's serial console.
#ifndef KVMRUN_CLI_CONSOLE_SERVER_H_
#define KVMRUN_CLI_CONSOLE_SERVER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace kvmrun::cli {

// Sends all of `bytes` on a socket within `timeout`, without SIGPIPE; false when it could not.
bool SendAll(int fd, std::string_view bytes, std::chrono::milliseconds timeout);

inline constexpr char kConsoleGreetingOk[] = "kvmrun-console ok";
inline constexpr char kConsoleGreetingBusy[] = "kvmrun-console busy";
// Sent on its own line before the server lets a client go because its input could not be
// delivered (the guest stopped reading its console, or the VM exited); the reason follows.
inline constexpr char kConsoleInputRefused[] = "kvmrun-console: input not delivered:";

class ConsoleServer {
 public:
  // Listens on `path` (which must not exist). `write` types the client's bytes on the guest's
  // console; `recent` gives the console's last lines for a client that just connected.
  // Throws Error when the socket cannot be made.
  ConsoleServer(std::string path, std::function<void(std::string_view)> write,
                std::function<std::string()> recent);
  ~ConsoleServer();  // the client is disconnected and the socket removed
  ConsoleServer(const ConsoleServer&) = delete;
  ConsoleServer& operator=(const ConsoleServer&) = delete;

  // Console output for the client, if one is attached. Any thread. A client that reads
  // nothing for a second is disconnected: it must never hold up the VM's console.
  void Forward(std::string_view bytes);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace kvmrun::cli

#endif  // KVMRUN_CLI_CONSOLE_SERVER_H_

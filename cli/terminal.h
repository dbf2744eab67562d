// The user's terminal as a guest's serial console, as virsh console does it: keys go to the
// guest unchanged (Ctrl-C and Ctrl-Z included), one escape key is kvmrun's, and the terminal's
// modes come back however kvmrun ends.
//
// Ways out and what restores the terminal: the escape key, the guest powering off, a QEMU
// crash, SIGINT/SIGTERM/SIGHUP from elsewhere (requests, stop_requests.h: the normal path and
// RawTerminal's destructor), and kvmrun itself crashing or killed by a signal it does not read
// (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, and SIGINT, SIGTERM, SIGHUP, SIGQUIT where they are
// not requests: a handler restores the modes, then the signal takes its default course). Only
// SIGKILL leaves a raw terminal behind (`stty sane` mends it).
#ifndef KVMRUN_CLI_TERMINAL_H_
#define KVMRUN_CLI_TERMINAL_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace kvmrun::cli {

// "^]" (caret notation, ^@ to ^_ and ^A to ^Z in either case) -> the control character;
// "none" -> nullopt. UsageError("--escape-key", ...) naming the value and the valid ones.
std::optional<char> ParseEscapeKey(const std::string& text);
// 0x1d -> "Ctrl-]".
std::string EscapeKeyName(char key);

// Whether `fd` is a terminal this process may read from: a terminal whose foreground process
// group is ours (a background `kvmrun run &` would be stopped by SIGTTIN at its first read).
bool IsForegroundTerminal(int fd);

// Raw input on a terminal while it lives: no line editing, no echo, no signals from keys, no
// flow control. Output processing stays, so kvmrun's own lines still start at the left margin.
class RawTerminal {
 public:
  // Throws Error when the terminal's modes cannot be read or set.
  explicit RawTerminal(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;
};

// Copies the bytes read from `in_fd` to `write`, on a thread of its own, until end of input.
// The escape key (when given) is not copied: each press calls on_escape, and nothing typed
// after the first is copied. `write` failing (the VM has exited) ends the copying.
class ConsoleInput {
 public:
  ConsoleInput(int in_fd, std::optional<char> escape, std::function<void(std::string_view)> write,
               std::function<void()> on_escape);
  ~ConsoleInput();  // stops the thread
  ConsoleInput(const ConsoleInput&) = delete;
  ConsoleInput& operator=(const ConsoleInput&) = delete;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace kvmrun::cli

#endif  // KVMRUN_CLI_TERMINAL_H_

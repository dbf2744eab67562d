#include "cli/terminal.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <thread>

#include "kvmrun/error.h"

namespace kvmrun::cli {
namespace {

// The modes to put back from a fatal-signal handler: plain data, set before the handler is.
int g_saved_fd = -1;
termios g_saved_modes;

// Signals whose default action ends the process. (kvmrun run reads SIGINT, SIGTERM and SIGHUP
// through a signalfd, blocked everywhere: for it only the crashes can reach the handler.)
constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS,  SIGFPE, SIGILL, SIGABRT,
                                 SIGINT,  SIGTERM, SIGHUP, SIGQUIT};

void RestoreAndDie(int signal) {
  if (g_saved_fd >= 0) tcsetattr(g_saved_fd, TCSANOW, &g_saved_modes);  // async-signal-safe
  ::signal(signal, SIG_DFL);
  raise(signal);
}

}  // namespace

std::optional<char> ParseEscapeKey(const std::string& text) {
  if (text == "none") return std::nullopt;
  if (text.size() == 2 && text[0] == '^') {
    const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(text[1])));
    if (c >= '@' && c <= '_') return static_cast<char>(c & 0x1f);
  }
  throw UsageError("escape_key", "invalid value '" + text +
                                     "'; valid: a control key in caret notation (^] ^A .. ^Z ^@ "
                                     "^\\ ^^ ^_), or none");
}

std::string EscapeKeyName(char key) {
  return std::string("Ctrl-") + static_cast<char>((static_cast<unsigned char>(key) & 0x1f) | 0x40);
}

bool IsForegroundTerminal(int fd) { return isatty(fd) == 1 && tcgetpgrp(fd) == getpgrp(); }

RawTerminal::RawTerminal(int fd) {
  termios modes;
  if (tcgetattr(fd, &modes) != 0) {
    throw Error(std::string("reading the terminal's modes: ") + std::strerror(errno));
  }
  g_saved_modes = modes;
  g_saved_fd = fd;
  for (int signal : kFatalSignals) ::signal(signal, RestoreAndDie);
  modes.c_iflag &= ~static_cast<tcflag_t>(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR |
                                          ICRNL | IXON | IXOFF);
  modes.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
  modes.c_cflag &= ~static_cast<tcflag_t>(CSIZE | PARENB);
  modes.c_cflag |= CS8;
  modes.c_cc[VMIN] = 1;
  modes.c_cc[VTIME] = 0;
  if (tcsetattr(fd, TCSANOW, &modes) != 0) {  // what was typed ahead goes to the guest
    const int err = errno;
    g_saved_fd = -1;
    throw Error(std::string("setting the terminal to raw input: ") + std::strerror(err));
  }
}

RawTerminal::~RawTerminal() {
  tcsetattr(g_saved_fd, TCSAFLUSH, &g_saved_modes);
  g_saved_fd = -1;
  for (int signal : kFatalSignals) ::signal(signal, SIG_DFL);
}

struct ConsoleInput::State {
  int in_fd = -1;
  int wake_read = -1;
  int wake_write = -1;
  std::thread thread;
};

ConsoleInput::ConsoleInput(int in_fd, std::optional<char> escape,
                           std::function<void(std::string_view)> write,
                           std::function<void()> on_escape)
    : state_(std::make_unique<State>()) {
  int wake[2];
  if (pipe2(wake, O_CLOEXEC) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
  state_->in_fd = in_fd;
  state_->wake_read = wake[0];
  state_->wake_write = wake[1];
  state_->thread = std::thread(
      [state = state_.get(), escape, write = std::move(write), on_escape = std::move(on_escape)] {
        bool escaped = false;
        bool writing = true;
        pollfd fds[2] = {{state->in_fd, POLLIN, 0}, {state->wake_read, POLLIN, 0}};
        while (true) {
          if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
          }
          if (fds[1].revents != 0) return;
          char buffer[4096];
          const ssize_t n = read(state->in_fd, buffer, sizeof(buffer));
          if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
          if (n <= 0) return;  // end of input: the VM runs on without it
          std::string_view bytes(buffer, static_cast<std::size_t>(n));
          while (!bytes.empty()) {
            const std::size_t at = escape ? bytes.find(*escape) : std::string_view::npos;
            if (writing && !escaped) {
              try {
                write(bytes.substr(0, at));
              } catch (const Error&) {
                writing = false;  // the VM has exited; the run ends on its own
              }
            }
            if (at == std::string_view::npos) break;
            escaped = true;
            on_escape();
            bytes.remove_prefix(at + 1);
          }
        }
      });
}

ConsoleInput::~ConsoleInput() {
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = ::write(state_->wake_write, &byte, 1);
  state_->thread.join();
  close(state_->wake_read);
  close(state_->wake_write);
}

}  // namespace kvmrun::cli

// The guest's serial console as kvmrun sees it: a stream of bytes cut into lines, with waits for
// a line matching a pattern and a bounded tail for error messages.
//
// Robust to how consoles behave: a line split across reads, several lines in one read, CRLF or
// LF, a final line without a newline (a prompt), floods (history is bounded, matching stays
// linear). Waiting is on a condition variable signalled by each append: no polling.
// Kernel messages interleaved in the middle of a guest line cannot be undone; patterns are
// matched against each line, so boot guests with `quiet` when exact lines matter.
#ifndef KVMRUN_CONSOLE_H_
#define KVMRUN_CONSOLE_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace kvmrun {

struct ConsoleMatch {
  enum class Outcome { kMatched, kTimeout, kClosed };
  Outcome outcome = Outcome::kTimeout;
  std::size_t pattern = 0;  // which pattern matched (index into the list)
  std::string line;         // the matching line, without its line ending
};

class ConsoleLog {
 public:
  static constexpr std::size_t kDefaultMaxLines = 20000;
  // Longer lines are cut: a guest controls them, and std::regex recurses per character.
  static constexpr std::size_t kMaxLineBytes = 4096;

  explicit ConsoleLog(std::size_t max_lines = kDefaultMaxLines) : max_lines_(max_lines) {}

  // Adds bytes as they arrive. Thread-safe.
  void Append(std::string_view bytes);
  // No more output will come (QEMU exited); waiters stop waiting.
  void Close();

  // Waits until a line not yet consumed by an earlier match matches one of `patterns`, the
  // console closes, or `timeout` passes. A match consumes the lines up to and including it,
  // so successive waits move forward through the output, expect-style; a wait that finds
  // nothing consumes nothing. The current unterminated line is matched too.
  ConsoleMatch WaitForAny(const std::vector<std::regex>& patterns,
                          std::chrono::milliseconds timeout);
  ConsoleMatch WaitFor(const std::regex& pattern, std::chrono::milliseconds timeout);

  // The last `lines` lines (the unterminated one included), joined with '\n'.
  std::string Tail(std::size_t lines = 20) const;
  std::uint64_t bytes() const;
  bool closed() const;

 private:
  void AddLine(std::string line);  // with mu_ held

  const std::size_t max_lines_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> lines_;
  std::uint64_t first_line_number_ = 0;  // number of lines_.front()
  std::uint64_t next_unconsumed_ = 0;    // first line number a wait may match
  std::string partial_;
  bool partial_consumed_ = false;
  bool closed_ = false;
  std::uint64_t bytes_ = 0;
};

}  // namespace kvmrun

#endif  // KVMRUN_CONSOLE_H_

// The guest's serial console as kvmrun sees it: a stream of bytes cut into lines, with waits for
// a line matching a pattern and a bounded tail for error messages.
//
// Patterns match whole lines: a line is complete at its newline, or, for a prompt that has
// none ("login: "), once nothing more has come for kPromptIdle. So a half-written line never
// matches, and what a match reports is the whole deciding line ("Kernel panic - not syncing:
// VFS: Unable to mount root fs ..."), not the part that had arrived.
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
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace kvmrun {

// A regular expression for console lines, in RE2 syntax (Perl-like: classes, groups,
// alternation, repetition, \d \s \w, (?i); no backreferences or lookaround). Matching takes
// time linear in the line's length whatever the pattern: the guest writes the lines, and with
// a backtracking engine (std::regex, PCRE) a pattern such as (a+)+# against a line of a's
// would run for hours. Cheap to copy; safe to use from several threads at once.
class ConsolePattern {
 public:
  // Throws UsageError("invalid regular expression '<pattern>': <why>").
  explicit ConsolePattern(std::string_view pattern);
  // A pattern that matches `text` literally.
  static ConsolePattern Literal(std::string_view text);

  const std::string& pattern() const { return pattern_; }
  // True when the pattern matches anywhere in `line`.
  bool Matches(std::string_view line) const;
  // The pattern's capture groups in its first match in `line` (group 1 first; a group that
  // took no part is ""); empty when it has none or does not match.
  std::vector<std::string> Groups(std::string_view line) const;

 private:
  ConsolePattern() = default;
  std::string pattern_;
  std::shared_ptr<const re2::RE2> re_;
};

struct ConsoleMatch {
  enum class Outcome { kMatched, kTimeout, kClosed };
  Outcome outcome = Outcome::kTimeout;
  std::size_t pattern = 0;          // which pattern matched (index into the list)
  std::string line;                 // the whole matching line, without its line ending
  std::vector<std::string> groups;  // its capture groups (ConsolePattern::Groups)
};

// Cuts a byte stream into lines at each '\n' (the '\n' dropped, a '\r' before it kept).
// A line longer than max_line_bytes keeps its first max_line_bytes: whoever writes the stream
// (a guest, QEMU) cannot make the reader's memory grow. Not thread-safe.
class LineSplitter {
 public:
  static constexpr std::size_t kDefaultMaxLineBytes = 4096;

  explicit LineSplitter(std::size_t max_line_bytes = kDefaultMaxLineBytes)
      : max_line_bytes_(max_line_bytes) {}

  // Calls on_line(std::string) for each line `bytes` completes, in order.
  template <typename OnLine>
  void Push(std::string_view bytes, OnLine&& on_line) {
    while (!bytes.empty()) {
      const std::size_t newline = bytes.find('\n');
      if (partial_.size() < max_line_bytes_) {
        partial_.append(bytes.substr(0, newline).substr(0, max_line_bytes_ - partial_.size()));
      }
      if (newline == std::string_view::npos) return;
      std::string line = std::move(partial_);
      partial_.clear();
      on_line(std::move(line));
      bytes.remove_prefix(newline + 1);
    }
  }

  // The line begun but not yet ended.
  const std::string& partial() const { return partial_; }

 private:
  std::size_t max_line_bytes_;
  std::string partial_;
};

// Where a series of waits for the same patterns has looked already: a caller that waits in
// slices (to notice something else between them) passes the same one to each, so that no
// slice scans again what the last one scanned.
struct ConsoleScan {
  std::uint64_t next_line = 0;
};

class ConsoleLog {
 public:
  static constexpr std::size_t kDefaultMaxLines = 20000;
  // How long an unterminated line must stay as it is before it counts as complete (a prompt).
  static constexpr std::chrono::milliseconds kPromptIdle{300};
  // Longer lines are cut: a guest controls them.
  static constexpr std::size_t kMaxLineBytes = LineSplitter::kDefaultMaxLineBytes;

  explicit ConsoleLog(std::size_t max_lines = kDefaultMaxLines,
                      std::chrono::milliseconds prompt_idle = kPromptIdle)
      : max_lines_(max_lines), prompt_idle_(prompt_idle) {}

  // Adds bytes as they arrive. Thread-safe.
  void Append(std::string_view bytes);
  // No more output will come (QEMU exited); waiters stop waiting.
  void Close();

  // Waits until a line not yet consumed by an earlier match matches one of `patterns`, the
  // console closes, or `timeout` passes. A match consumes the lines up to and including it,
  // so successive waits move forward through the output, expect-style; a wait that finds
  // nothing consumes nothing. The current unterminated line is matched too, once it has been
  // idle for kPromptIdle (so waits for a prompt take that long at least). Matching happens
  // outside the lock, so a slow match never holds up the reader or other waiters.
  // `scan`, when given, carries where the previous wait of a series stopped looking.
  ConsoleMatch WaitForAny(const std::vector<ConsolePattern>& patterns,
                          std::chrono::milliseconds timeout, ConsoleScan* scan = nullptr);
  ConsoleMatch WaitFor(const ConsolePattern& pattern, std::chrono::milliseconds timeout,
                       ConsoleScan* scan = nullptr);
  // WaitForAny until `deadline`, in slices of at most 250 ms so that `stop_requested` (when
  // given) is asked often enough to give up early; a series of slices scans each line once.
  ConsoleMatch WaitForAnyUntil(const std::vector<ConsolePattern>& patterns,
                               std::chrono::steady_clock::time_point deadline,
                               const std::function<bool()>& stop_requested = {});

  // Consumes all output so far, so that the next wait sees only what comes after: for
  // "send this, wait for that". The line being written (a prompt) is consumed whole, with
  // what completes it later (the echo of what was sent after the prompt).
  void ConsumeAll();

  // The last `lines` lines (the unterminated one included), joined with '\n'.
  std::string Tail(std::size_t lines = 20) const;
  std::uint64_t bytes() const;
  bool closed() const;

 private:
  void AddLine(std::string line);  // with mu_ held

  const std::size_t max_lines_;
  const std::chrono::milliseconds prompt_idle_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> lines_;
  std::uint64_t first_line_number_ = 0;  // number of lines_.front()
  std::uint64_t next_unconsumed_ = 0;    // first line number a wait may match
  LineSplitter splitter_{kMaxLineBytes};
  bool partial_consumed_ = false;
  bool closed_ = false;
  std::uint64_t bytes_ = 0;
  std::chrono::steady_clock::time_point last_append_{};
};

}  // namespace kvmrun

#endif  // KVMRUN_CONSOLE_H_

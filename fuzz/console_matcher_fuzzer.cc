// libFuzzer target for the console matcher: a pattern and console bytes, both hostile (the
// user may paste any pattern; the guest writes the bytes). Compiling must succeed or throw
// UsageError; matching must end (RE2 is linear: scripts/fuzz runs with -timeout, so an input
// that makes matching slow fails); no line kept may exceed the line limit.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kvmrun/console.h"
#include "kvmrun/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // First byte: the pattern's length; then the pattern; then console bytes, fed in reads of
  // the size the second byte gives.
  const std::size_t pattern_size = std::min<std::size_t>(data[0], size - 2);
  const std::size_t read_size = 1 + data[1] % 64;
  const std::string_view pattern(reinterpret_cast<const char*>(data) + 2, pattern_size);
  const std::string_view console(reinterpret_cast<const char*>(data) + 2 + pattern_size,
                                 size - 2 - pattern_size);
  std::optional<kvmrun::ConsolePattern> compiled;
  try {
    compiled.emplace(pattern);
  } catch (const kvmrun::UsageError&) {
    return 0;
  }
  kvmrun::ConsoleLog log(64);
  for (std::size_t at = 0; at < console.size(); at += read_size) {
    log.Append(console.substr(at, read_size));
    const kvmrun::ConsoleMatch match = log.WaitFor(*compiled, std::chrono::milliseconds(0));
    if (match.outcome == kvmrun::ConsoleMatch::Outcome::kMatched &&
        match.line.size() > kvmrun::ConsoleLog::kMaxLineBytes) {
      __builtin_trap();  // a line longer than the limit was kept
    }
  }
  log.Close();
  if (log.WaitFor(*compiled, std::chrono::milliseconds(0)).outcome ==
      kvmrun::ConsoleMatch::Outcome::kTimeout) {
    __builtin_trap();  // a closed console must say so
  }
  (void)log.Tail(5);
  return 0;
}

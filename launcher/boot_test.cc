#include "kvmrun/boot_test.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <set>
#include <thread>

#include "kvmrun/error.h"

namespace kvmrun {

std::string_view ToString(BootOutcome outcome) {
  switch (outcome) {
    case BootOutcome::kPassed:
      return "passed";
    case BootOutcome::kFailurePattern:
      return "failure pattern";
    case BootOutcome::kPanic:
      return "kernel panic";
    case BootOutcome::kTimeout:
      return "timeout";
    case BootOutcome::kQemuExited:
      return "QEMU exited";
    case BootOutcome::kError:
      return "error";
  }
  return "?";
}

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kConsoleKeptBytes = 4u << 20;

ConsolePattern Compile(const std::string& pattern, const char* what) {
  try {
    return ConsolePattern(pattern);
  } catch (const UsageError& e) {
    throw UsageError(std::string(what) + ": " + e.what());
  }
}

std::string Seconds(std::chrono::milliseconds ms) {
  char out[32];
  std::snprintf(out, sizeof(out), "%.1f s", static_cast<double>(ms.count()) / 1000);
  return out;
}

// Keeps the last kConsoleKeptBytes of a console, safely across threads.
class ConsoleRecord {
 public:
  void Append(std::string_view bytes) {
    std::lock_guard lock(mu_);
    text_.append(bytes);
    if (text_.size() > 2 * kConsoleKeptBytes) text_.erase(0, text_.size() - kConsoleKeptBytes);
  }
  std::string Take() {
    std::lock_guard lock(mu_);
    if (text_.size() > kConsoleKeptBytes) text_.erase(0, text_.size() - kConsoleKeptBytes);
    return std::move(text_);
  }

 private:
  std::mutex mu_;
  std::string text_;
};

}  // namespace

void ValidateBootCase(const BootCase& c) {
  const std::string which = "case '" + c.name + "': ";
  if (c.expect.empty()) throw UsageError(which + "--expect REGEX is required");
  Compile(c.expect, "--expect");
  for (const std::string& fail : c.fail) Compile(fail, "--fail");
  if (c.spec.kernel.empty() && c.spec.disks.empty() && c.spec.cdrom.empty()) {
    throw UsageError(which + "nothing to boot: give --kernel or --disk");
  }
  ValidateVmSpec(c.spec);
}

void ValidateBootCaseNames(const std::vector<BootCase>& cases) {
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string& name = cases[i].name;
    const std::string which = "case " + std::to_string(i + 1) + ": ";
    if (name.empty()) throw UsageError(which + "name: must not be empty");
    if (name.size() > 200) throw UsageError(which + "name: longer than 200 bytes");
    if (!seen.insert(name).second) {
      throw UsageError(which + "name: '" + name +
                       "' is used by an earlier case; names must be "
                       "unique (they name the reports and log files)");
    }
  }
}

std::string BootCaseFileName(std::string_view name) {
  std::string safe;
  for (char c : name.substr(0, 100)) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
                      (c == '.' && !safe.empty());
    safe += keep ? c : '_';
  }
  if (safe == name) return safe;
  std::uint64_t hash = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : name) hash = (hash ^ c) * 1099511628211ull;
  char suffix[20];
  std::snprintf(suffix, sizeof(suffix), "-%012llx",
                static_cast<unsigned long long>(hash & 0xffffffffffffull));
  return safe + suffix;
}

BootCaseResult RunBootCase(const BootCase& c, const BootTestOptions& options) {
  ValidateBootCase(c);
  std::vector<ConsolePattern> patterns = {Compile(c.expect, "--expect"),
                                          ConsolePattern::Literal(kKernelPanicPattern)};
  for (const std::string& fail : c.fail) patterns.push_back(Compile(fail, "--fail"));

  BootCaseResult result;
  result.name = c.name;
  const auto start = Clock::now();
  ConsoleRecord console;
  VmOptions vm_options = options.vm;
  vm_options.on_console = [&](std::string_view bytes) {
    console.Append(bytes);
    if (options.on_console) options.on_console(c.name, bytes);
  };
  VmSpec spec = c.spec;
  spec.no_reboot = true;

  try {
    std::unique_ptr<Vm> vm = Vm::Start(spec, vm_options);
    result.accel = vm->accel().accel;
    result.timeout = result.accel == Accel::kTcg
                         ? std::chrono::milliseconds(static_cast<long long>(
                               static_cast<double>(c.timeout.count()) * options.tcg_factor))
                         : c.timeout;
    vm->Continue();
    // In slices, to notice a stop request.
    const auto deadline = Clock::now() + result.timeout;
    ConsoleMatch match;
    bool interrupted = false;
    do {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      match = vm->console().WaitForAny(patterns, std::clamp(left, 0ms, 250ms));
      interrupted = options.stop != nullptr && options.stop->Pending();
    } while (match.outcome == ConsoleMatch::Outcome::kTimeout && Clock::now() < deadline &&
             !interrupted);
    if (match.outcome == ConsoleMatch::Outcome::kTimeout && interrupted) {
      vm->Shutdown(0ms);
      throw Interrupted("a stop request", "before '" + c.expect + "' appeared");
    }
    result.matched_line = match.line;
    switch (match.outcome) {
      case ConsoleMatch::Outcome::kMatched:
        if (match.pattern == 0) {
          result.outcome = BootOutcome::kPassed;
          result.message = "matched '" + c.expect + "'";
        } else if (match.pattern == 1) {
          result.outcome = BootOutcome::kPanic;
          result.message = "guest kernel panic: " + match.line;
        } else {
          result.outcome = BootOutcome::kFailurePattern;
          result.message =
              "failure pattern '" + c.fail[match.pattern - 2] + "' matched: " + match.line;
        }
        break;
      case ConsoleMatch::Outcome::kClosed: {
        const auto status = vm->WaitForExit(5s);
        const std::string reason = vm->ShutdownReason();
        result.outcome = BootOutcome::kQemuExited;
        result.message = "QEMU exited (" + (status ? status->ToString() : "?") +
                         (reason.empty() ? "" : ", " + reason) + ") before '" + c.expect + "'";
        break;
      }
      case ConsoleMatch::Outcome::kTimeout:
        result.outcome = BootOutcome::kTimeout;
        result.message = "'" + c.expect + "' did not appear within " + Seconds(result.timeout) +
                         (result.accel == Accel::kTcg ? " (TCG)" : "");
        break;
    }
    vm->Shutdown(1s);
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    result.outcome = BootOutcome::kError;
    result.message = e.what();
  }
  result.console = console.Take();
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return result;
}

std::vector<BootCaseResult> RunBootCases(const std::vector<BootCase>& cases, int jobs,
                                         const BootTestOptions& options) {
  std::vector<BootCaseResult> results(cases.size());
  std::atomic<std::size_t> next{0};
  const auto worker = [&] {
    for (std::size_t i = next++; i < cases.size(); i = next++) {
      if (options.stop != nullptr && options.stop->Pending()) {
        results[i].name = cases[i].name;
        results[i].outcome = BootOutcome::kError;
        results[i].message = "not run: interrupted by a stop request";
        if (options.on_result) options.on_result(results[i]);
        continue;
      }
      try {
        results[i] = RunBootCase(cases[i], options);
      } catch (const Error& e) {
        results[i].name = cases[i].name;
        results[i].outcome = BootOutcome::kError;
        results[i].message = e.what();
      }
      if (options.on_result) options.on_result(results[i]);
    }
  };
  std::vector<std::thread> threads;
  const int count = std::max(1, std::min<int>(jobs, static_cast<int>(cases.size())));
  for (int t = 0; t < count; ++t) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  return results;
}

namespace {

// Text made safe for XML 1.0: invalid UTF-8 and control characters become \xNN.
std::string XmlSafe(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto escape_byte = [&](unsigned char byte) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "\\x%02x", byte);
    out += hex;
  };
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
        escape_byte(c);
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // A well-formed multi-byte sequence of a character XML allows is copied whole; anything
    // else byte by byte.
    const std::size_t length = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    bool ok = length > 0 && c <= 0xf4 && i + length <= text.size();
    std::uint32_t cp = c & (0x7f >> length);
    for (std::size_t k = 1; ok && k < length; ++k) {
      const unsigned char next = static_cast<unsigned char>(text[i + k]);
      ok = (next & 0xc0) == 0x80;
      cp = (cp << 6) | (next & 0x3f);
    }
    const std::uint32_t min = length == 4 ? 0x10000 : length == 3 ? 0x800 : 0x80;
    ok = ok && cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) && cp != 0xfffe &&
         cp != 0xffff;
    if (ok) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      escape_byte(c);
      ++i;
    }
  }
  return out;
}

std::string Attribute(std::string_view text) {
  std::string out;
  for (char c : XmlSafe(text)) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\n':
        out += "&#10;";
        break;
      case '\r':
        out += "&#13;";
        break;
      case '\t':
        out += "&#9;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Cdata(std::string_view text) {
  std::string safe = XmlSafe(text);
  std::string out = "<![CDATA[";
  std::size_t from = 0, at;
  while ((at = safe.find("]]>", from)) != std::string::npos) {
    out.append(safe, from, at + 2 - from);
    out += "]]><![CDATA[";
    from = at + 2;
  }
  out.append(safe, from, std::string::npos);
  return out + "]]>";
}

std::string SecondsAttr(std::chrono::milliseconds ms) {
  char out[32];
  std::snprintf(out, sizeof(out), "%.3f", static_cast<double>(ms.count()) / 1000);
  return out;
}

}  // namespace

std::string JunitXml(const std::vector<BootCaseResult>& results, const std::string& suite_name) {
  std::size_t failures = 0, errors = 0;
  std::chrono::milliseconds total{0};
  for (const BootCaseResult& r : results) {
    failures += !r.passed() && r.outcome != BootOutcome::kError;
    errors += r.outcome == BootOutcome::kError;
    total += r.elapsed;
  }
  char timestamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::strftime(timestamp, sizeof(timestamp), "%Y-%m-%dT%H:%M:%S", &utc);
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);

  const std::string counts = "tests=\"" + std::to_string(results.size()) + "\" failures=\"" +
                             std::to_string(failures) + "\" errors=\"" + std::to_string(errors) +
                             "\"";
  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  xml += "<testsuites name=\"" + Attribute(suite_name) + "\" " + counts + " time=\"" +
         SecondsAttr(total) + "\">\n";
  xml += "  <testsuite name=\"" + Attribute(suite_name) + "\" " + counts +
         " skipped=\"0\" time=\"" + SecondsAttr(total) + "\" timestamp=\"" + timestamp +
         "\" hostname=\"" + Attribute(host) + "\">\n";
  for (const BootCaseResult& r : results) {
    xml += "    <testcase name=\"" + Attribute(r.name) + "\" classname=\"" + Attribute(suite_name) +
           "\" time=\"" + SecondsAttr(r.elapsed) + "\">\n";
    if (!r.passed()) {
      const std::string tag = r.outcome == BootOutcome::kError ? "error" : "failure";
      xml += "      <" + tag + " message=\"" + Attribute(r.message) + "\" type=\"" +
             Attribute(ToString(r.outcome)) + "\">" + Cdata(r.matched_line) + "</" + tag + ">\n";
    }
    xml += "      <system-out>" + Cdata(r.console) + "</system-out>\n";
    xml += "    </testcase>\n";
  }
  xml += "  </testsuite>\n</testsuites>\n";
  return xml;
}

}  // namespace kvmrun

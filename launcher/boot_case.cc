#include "kvmrun/boot_case.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "core/safe_text.h"
#include "kvmrun/boot_matrix.h"
#include "kvmrun/error.h"
#include "kvmrun/guest_clock.h"
#include "kvmrun/qemu_probe.h"
#include "launcher/qemu_install.h"
#include "launcher/run_capture.h"

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
    case BootOutcome::kCommandFailed:
      return "command failed";
    case BootOutcome::kError:
      return "error";
  }
  return "?";
}

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kConsoleKeptBytes = 4u << 20;

ConsolePattern Compile(const std::string& pattern, const char* field) {
  try {
    return ConsolePattern(pattern);
  } catch (const UsageError& e) {
    throw UsageError(field, e.what());
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

namespace {

// A path the file gave, relative to the file's directory (an absolute one, or none, as is).
std::string FromFile(const std::string& path, const std::string& base_dir) {
  if (base_dir.empty() || path.empty() || path.front() == '/') return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

}  // namespace

std::vector<BootCase> BootCasesFromJson(const nlohmann::json& suite, const BootCase& defaults,
                                        const std::string& base_dir) {
  const nlohmann::json json = ExpandBootMatrix(suite);
  if (!json.is_array() || json.empty()) {
    throw UsageError("expected a non-empty JSON array of cases");
  }
  std::vector<BootCase> cases;
  for (const nlohmann::json& entry : json) {
    // Errors name the case by its place, and by its name when the entry has a string one.
    std::string which = "case " + std::to_string(cases.size() + 1);
    if (entry.is_object() && entry.contains("name") && entry["name"].is_string()) {
      which += " ('" + SafeExcerpt(entry["name"].get<std::string>()) + "')";
    }
    which += ": ";
    BootCase c = defaults;
    c.name = "case-" + std::to_string(cases.size() + 1);
    try {
      if (!entry.is_object()) throw UsageError("each case must be a JSON object");
      for (const auto& [key, value] : entry.items()) {
        if (key == "name") {
          c.name = value.get<std::string>();
        } else if (key == "os") {
          c.spec.os = ParseGuestOs(value.get<std::string>());
        } else if (key == "qemu") {
          // A bare name is looked up in PATH; a path is the file's.
          c.spec.qemu = value.get<std::string>();
          if (c.spec.qemu.find('/') != std::string::npos)
            c.spec.qemu = FromFile(c.spec.qemu, base_dir);
        } else if (key == "firmware") {
          c.spec.firmware = ParseFirmware(value.get<std::string>(), "firmware");
        } else if (key == "kernel") {
          c.spec.kernel = FromFile(value.get<std::string>(), base_dir);
        } else if (key == "initrd") {
          c.spec.initrd = FromFile(value.get<std::string>(), base_dir);
        } else if (key == "append") {
          c.spec.append = value.get<std::string>();
        } else if (key == "expect") {
          c.expect = value.get<std::string>();
        } else if (key == "fail") {
          c.fail = value.get<std::vector<std::string>>();
        } else if (key == "timeout") {
          const double seconds = value.get<double>();
          if (!(seconds > 0) || seconds > 1e7) {
            throw UsageError("timeout", "invalid value '" + value.dump() +
                                            "'; valid: a number of seconds greater than 0");
          }
          c.timeout = std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
        } else if (key == "memory") {
          c.spec.memory_mib = ParseMemorySize(value.get<std::string>(), "memory");
        } else if (key == "run") {
          // Each step an argv array, or a string run by the guest's sh -c.
          c.run.clear();
          for (const nlohmann::json& step : value) {
            if (step.is_string()) {
              c.run.push_back({"sh", "-c", step.get<std::string>()});
            } else {
              c.run.push_back(step.get<std::vector<std::string>>());
            }
            if (c.run.back().empty()) throw UsageError("run", "a step is an empty command");
          }
        } else if (key == "disk") {
          c.spec.disks.clear();
          for (const std::string& d : value.get<std::vector<std::string>>()) {
            c.spec.disks.push_back(ParseDiskArgument(d, false, true, "disk"));
            c.spec.disks.back().path = FromFile(c.spec.disks.back().path, base_dir);
          }
        } else {
          throw UsageError("unknown field '" + key +
                           "'; valid: name, os, qemu, firmware, kernel, initrd, append, disk, "
                           "expect, fail, run, timeout, memory");
        }
      }
    } catch (const nlohmann::json::exception& e) {
      throw UsageError(which + "wrong type (" + e.what() + ")");
    } catch (const UsageError& e) {
      throw UsageError(which + e.what());
    }
    c.spec.name = "kvmrun-" + c.name;
    cases.push_back(std::move(c));
  }
  return cases;
}

namespace {

std::string DisksText(const std::vector<DiskSpec>& disks) {
  std::string text;
  for (const DiskSpec& d : disks) {
    if (!text.empty()) text += " ";
    text += d.path + ":" + std::string(ToString(d.format)) + (d.read_only ? ":ro" : "") +
            (d.snapshot ? ":snapshot" : "") + (d.bus ? ":" + std::string(ToString(*d.bus)) : "");
  }
  return text.empty() ? "none" : text;
}

// The fields that make the VM a case boots, as text to compare and to quote.
std::vector<std::pair<const char*, std::string>> VmFieldsOf(const BootCase& c) {
  const VmSpec& s = c.spec;
  return {{"os", std::string(ToString(s.os))},
          {"qemu", s.qemu},
          {"firmware", s.firmware ? std::string(ToString(*s.firmware)) : "default"},
          {"kernel", s.kernel},
          {"initrd", s.initrd},
          {"append", s.append},
          {"disk", DisksText(s.disks)},
          {"memory", std::to_string(s.memory_mib) + "M"}};
}

}  // namespace

void ValidateOneVmForSuite(const std::vector<BootCase>& cases) {
  if (cases.empty()) return;
  const auto first = VmFieldsOf(cases.front());
  for (const BootCase& c : cases) {
    const auto fields = VmFieldsOf(c);
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (fields[i].second == first[i].second) continue;
      throw UsageError("case '" + SafeExcerpt(c.name) + "' boots another VM than case '" +
                       SafeExcerpt(cases.front().name) + "' (" + fields[i].first + " '" +
                       SafeExcerpt(fields[i].second) + "', not '" + SafeExcerpt(first[i].second) +
                       "'): one saved VM serves only cases that boot it; run such cases "
                       "as separate suites");
    }
  }
}

void ValidateBootTestOptions(int jobs, const BootTestOptions& options) {
  if (jobs < 1 || jobs > 256) {
    throw UsageError("jobs", "invalid value '" + std::to_string(jobs) + "'; valid: 1 to 256");
  }
  if (!(options.tcg_factor >= 1) || options.tcg_factor > 1000) {
    throw UsageError("tcg_factor", "invalid value '" + std::to_string(options.tcg_factor) +
                                       "'; valid: 1 to 1000");
  }
}

void ValidateBootCase(const BootCase& c) {
  const std::string which = "case '" + c.name + "': ";
  if (c.expect.empty()) throw UsageError("expect", which + "a pattern is required");
  if (c.timeout <= std::chrono::milliseconds::zero()) {
    throw UsageError("timeout", which + "must be greater than 0");
  }
  Compile(c.expect, "expect");
  for (const std::string& fail : c.fail) Compile(fail, "fail");
  if (c.spec.kernel.empty() && c.spec.disks.empty() && c.spec.cdroms.empty()) {
    throw UsageError("kernel", which + "nothing to boot: no kernel, disk or cdrom");
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

namespace {

std::string JoinArgv(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& arg : argv) out += (out.empty() ? "" : " ") + arg;
  return out;
}

// The last kMaxStepOutputBytes of a step's stream.
std::string StepTail(const std::string& bytes) {
  return bytes.size() <= kMaxStepOutputBytes ? bytes
                                             : bytes.substr(bytes.size() - kMaxStepOutputBytes);
}

// The case's run steps, through the guest agent, within what is left of its timeout.
void RunSteps(Vm& vm, const BootCase& c, Clock::time_point deadline, ConsoleRecord& console,
              BootCaseResult& result) {
  const auto left = [&] {
    return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()),
                    1ms);
  };
  std::unique_ptr<GuestAgent> agent = vm.ConnectAgent(left());
  for (std::size_t i = 0; i < c.run.size(); ++i) {
    const std::string what = "'" + JoinArgv(c.run[i]) + "'";
    BootStepResult& step = result.steps.emplace_back();
    step.argv = c.run[i];
    GuestExecRequest request;
    request.argv = c.run[i];
    request.timeout = left();
    try {
      const GuestExecResult r = agent->Exec(request);
      step.ran = true;
      step.exit_code = r.exit_code;
      step.signal = r.signal;
      step.out = StepTail(r.out);
      step.err = StepTail(r.err);
      console.Append("\n--- run: " + JoinArgv(c.run[i]) + " (" + step.status() + ") ---\n" + r.out +
                     r.err);
    } catch (const Error& e) {  // timed out, no such program, the agent went away
      step.error = e.what();
    }
    if (!step.passed()) {
      result.outcome = BootOutcome::kCommandFailed;
      result.message = "step " + std::to_string(i + 1) + " " + what + ": " + step.status();
      if (step.ran) result.matched_line = step.err.empty() ? step.out : step.err;
      return;
    }
  }
  result.message += "; " + std::to_string(c.run.size()) + " command(s) passed";
}

// Whether the run was asked to stop: what console waits check between their slices.
std::function<bool()> StopRequested(const BootTestOptions& options) {
  return [stop = options.stop] { return stop != nullptr && stop->Pending(); };
}

std::chrono::milliseconds ScaledTimeout(const BootCase& c, Accel accel,
                                        const BootTestOptions& options) {
  return accel == Accel::kTcg ? std::chrono::milliseconds(static_cast<long long>(
                                    static_cast<double>(c.timeout.count()) * options.tcg_factor))
                              : c.timeout;
}

// The first line of `console` that one of `patterns` matches (the first of those that do), as
// ConsoleLog::WaitForAny would have found it; kTimeout when none does.
ConsoleMatch MatchBefore(const std::string& console, const std::vector<ConsolePattern>& patterns) {
  ConsoleMatch match;
  const auto look = [&](std::string line) {
    if (match.outcome == ConsoleMatch::Outcome::kMatched) return;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    for (std::size_t i = 0; i < patterns.size(); ++i) {
      if (!patterns[i].Matches(line)) continue;
      std::vector<std::string> groups = patterns[i].Groups(line);
      match = {ConsoleMatch::Outcome::kMatched, i, std::move(line), std::move(groups)};
      return;
    }
  };
  LineSplitter lines(ConsoleLog::kMaxLineBytes);  // cut as the console log cuts them
  lines.Push(console, look);
  if (!lines.partial().empty()) look(lines.partial());
  return match;
}

// Gives each disk whose writes a case discards a qcow2 overlay at `file`.diskN.qcow2 that the
// saved VM writes instead: the snapshot's memory belongs with the overlay, and the disk
// itself is never written. Returns the spec with the overlays in the disks' places.
VmSpec WithSavedOverlays(VmSpec spec, const std::string& file, const BootTestOptions& options) {
  std::string qemu_img;
  for (std::size_t i = 0; i < spec.disks.size(); ++i) {
    DiskSpec& disk = spec.disks[i];
    if (disk.read_only || !disk.snapshot) continue;
    if (qemu_img.empty()) {  // beside the QEMU, else on PATH
      const std::string qemu = FindQemu(spec.qemu);
      qemu_img = FindExecutable("qemu-img", {qemu.substr(0, qemu.rfind('/'))});
    }
    if (qemu_img.empty()) {
      throw UsageError(
          "a saved VM with a disk needs qemu-img (Debian: qemu-utils) for the "
          "overlay the saved VM writes to");
    }
    const std::string overlay = file + ".disk" + std::to_string(i) + ".qcow2";
    SpawnRequest request;
    request.executable = qemu_img;
    request.argv = {qemu_img,  "create", "-q",
                    "-f",      "qcow2",  "-b",
                    disk.path, "-F",     std::string(ToString(disk.format)),
                    overlay};
    const auto runner = options.vm.runner ? options.vm.runner : MakeProcessRunner();
    const CapturedRun made = RunAndCapture(*runner, request, 60s, 1 << 16, options.stop);
    if (!made.status.Success()) {
      throw Error("qemu-img could not create the overlay '" + overlay + "' of '" + disk.path +
                  "': " + made.err);
    }
    disk = DiskSpec{overlay, DiskFormat::kQcow2, true, false, false, disk.bus};
  }
  return spec;
}

// A restored guest's clock is as old as its snapshot: set it through the agent (waiting for it
// until `deadline`) and say so on the case's console. Error when it stays off.
void SetRestoredClock(Vm& vm, Clock::time_point deadline, ConsoleRecord& console) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  const ResyncResult resync = ResyncGuestClock(*vm.ConnectAgent(std::max(left, 1ms)));
  console.Append("--- restored; guest clock " + FormatResync(resync) + " ---\n");
  const auto off = std::chrono::nanoseconds(resync.after.SurelyOffNs());
  if (off > kDefaultMaxGuestOffset) {
    throw Error("the restored guest's clock is still " + resync.after.ToString() +
                " off after it was set");
  }
}

}  // namespace

BootSnapshot SaveBootSnapshot(const BootCase& boot, const std::string& pattern,
                              const std::string& file, const BootTestOptions& options) {
  const ConsolePattern at = Compile(pattern, "snapshot_at");
  ValidateBootCase(boot);
  const auto start = Clock::now();
  ConsoleRecord console;
  VmOptions vm_options = options.vm;
  vm_options.on_console = [&](std::string_view bytes) { console.Append(bytes); };
  VmSpec spec = WithSavedOverlays(WithAbsolutePaths(boot.spec), file, options);
  spec.no_reboot = true;
  std::unique_ptr<Vm> vm = Vm::Start(spec, vm_options);
  const auto deadline = Clock::now() + ScaledTimeout(boot, vm->accel().accel, options);
  vm->Continue();
  const ConsoleMatch match = vm->console().WaitForAnyUntil(
      {at, ConsolePattern::Literal(kKernelPanicPattern)}, deadline, StopRequested(options));
  if (match.outcome != ConsoleMatch::Outcome::kMatched || match.pattern != 0) {
    vm->Shutdown(0ms);
    throw VmError(
        "the line to save at, '" + pattern + "', did not appear (" +
            (match.outcome == ConsoleMatch::Outcome::kMatched  ? "kernel panic: " + match.line
             : match.outcome == ConsoleMatch::Outcome::kClosed ? "QEMU exited"
                                                               : "not within the case's timeout") +
            "); nothing was saved",
        vm->argv(), vm->StderrTail(), vm->console().Tail());
  }
  BootSnapshot snapshot;
  snapshot.file = file;
  snapshot.disks = spec.disks;
  snapshot.line = match.line;
  snapshot.boot = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  snapshot.save = vm->SaveSnapshot(file).took;
  vm->Shutdown(0ms);
  // All the guest printed until it was paused: what a restored guest printed before.
  snapshot.console = console.Take();
  return snapshot;
}

BootCaseResult RunBootCase(const BootCase& c, const BootTestOptions& options) {
  ValidateBootCase(c);
  std::vector<ConsolePattern> patterns = {Compile(c.expect, "expect"),
                                          ConsolePattern::Literal(kKernelPanicPattern)};
  for (const std::string& fail : c.fail) patterns.push_back(Compile(fail, "fail"));

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
  console.Append(c.console_before);

  try {
    std::unique_ptr<Vm> vm = Vm::Start(spec, vm_options);
    result.accel = vm->accel().accel;
    result.timeout = ScaledTimeout(c, result.accel, options);
    vm->Continue();
    // In slices, to notice a stop request.
    const auto deadline = Clock::now() + result.timeout;
    if (vm->restored_from() && spec.agent) SetRestoredClock(*vm, deadline, console);
    ConsoleMatch match = MatchBefore(c.console_before, patterns);
    if (match.outcome == ConsoleMatch::Outcome::kTimeout) {
      match = vm->console().WaitForAnyUntil(patterns, deadline, StopRequested(options));
    }
    if (match.outcome == ConsoleMatch::Outcome::kTimeout && StopRequested(options)()) {
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
    if (result.outcome == BootOutcome::kPassed && !c.run.empty()) {
      RunSteps(*vm, c, deadline, console, result);
    }
    // A restored guest writes only to temporary overlays: nothing it could flush at a power
    // off would survive it, so it is not given the time.
    vm->Shutdown(vm->restored_from() ? 0ms : 1s);
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
  ValidateBootTestOptions(jobs, options);
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

std::string BootStepResult::command() const { return JoinArgv(argv); }

std::string BootStepResult::status() const {
  if (!ran) return error;
  if (signal != 0) return "killed by signal " + std::to_string(signal);
  return "exit " + std::to_string(exit_code);
}

}  // namespace kvmrun

#include "kvmrun/boot_report.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <pugixml.hpp>
#include <set>
#include <sstream>

#include "core/safe_text.h"
#include "io/safe_file.h"
#include "kvmrun/boot_case.h"
#include "kvmrun/error.h"
#include "kvmrun/qmp_codec.h"
#include "policy/names.h"
#include "qmp/json_fields.h"

namespace kvmrun {
namespace {

namespace fs = std::filesystem;

constexpr std::array kAllBootOutcomes{BootOutcome::kPassed,     BootOutcome::kFailurePattern,
                                      BootOutcome::kPanic,      BootOutcome::kTimeout,
                                      BootOutcome::kQemuExited, BootOutcome::kCommandFailed,
                                      BootOutcome::kError};
constexpr std::uintmax_t kMaxReportBytes = 64 << 20;
constexpr std::uintmax_t kMaxConsoleBytes = 4 << 20;

double Seconds(std::chrono::milliseconds ms) { return static_cast<double>(ms.count()) / 1000.0; }
std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

// Whether `path` is a directory itself, not a link to one: a shard's directory comes from
// another machine, and a link in it could point anywhere on this one.
bool IsRealDir(const fs::path& path) {
  std::error_code ec;
  return fs::symlink_status(path, ec).type() == fs::file_type::directory;
}

bool HoldsReport(const fs::path& dir) {
  std::error_code ec;
  return fs::symlink_status(dir / kBootReportFile, ec).type() == fs::file_type::regular;
}

// The shard directories under `dir`: itself when it holds results.json, else its children
// (a results directory), else its grandchildren (a directory of results directories). Links
// are never followed.
std::vector<fs::path> ShardDirs(const fs::path& dir) {
  std::error_code ec;
  if (HoldsReport(dir)) return {dir};
  std::vector<fs::path> found;
  for (const auto& child : fs::directory_iterator(dir, ec)) {
    if (!IsRealDir(child.path())) continue;
    if (HoldsReport(child.path())) {
      found.push_back(child.path());
      continue;
    }
    for (const auto& grandchild : fs::directory_iterator(child.path(), ec)) {
      if (IsRealDir(grandchild.path()) && HoldsReport(grandchild.path())) {
        found.push_back(grandchild.path());
      }
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

struct ShardFile {
  fs::path dir;
  Shard shard;
  std::vector<std::string> suite;
  std::vector<BootCaseResult> results;
};

// A shard's run of a case lasts at most this long: elapsed and timeout beyond it are not times.
constexpr double kMaxCaseSeconds = 366.0 * 24 * 3600;

BootCaseResult ResultFromJson(const JsonFields& j) {
  BootCaseResult r;
  r.name = j.String("name");
  const std::string outcome_name = j.String("outcome");
  const auto outcome = FindByName(outcome_name, kAllBootOutcomes);
  if (!outcome) throw MalformedJson(j.where(), "outcome", "unknown outcome '" + outcome_name + "'");
  r.outcome = *outcome;
  r.message = j.StringOr("message", "");
  r.matched_line = j.StringOr("matched_line", "");
  r.accel = j.StringOr("accel", "tcg") == "kvm" ? Accel::kKvm : Accel::kTcg;
  r.elapsed = Millis(j.NumberOr("elapsed_s", 0.0, 0.0, kMaxCaseSeconds));
  r.timeout = Millis(j.NumberOr("timeout_s", 0.0, 0.0, kMaxCaseSeconds));
  if (const auto* steps = j.ArrayOrNull("steps")) {
    for (std::size_t i = 0; i < steps->size(); ++i) {
      const JsonFields f((*steps)[i], j.where() + ": steps[" + std::to_string(i) + "]");
      BootStepResult& step = r.steps.emplace_back();
      step.argv = f.StringArray("argv");
      step.ran = f.Bool("ran");
      step.exit_code = static_cast<int>(f.IntOr("exit_code", 0, 0, 255));
      step.signal = static_cast<int>(f.IntOr("signal", 0, 0, 128));
      step.out = f.StringOr("stdout", "");
      step.err = f.StringOr("stderr", "");
      step.error = f.StringOr("error", "");
    }
  }
  return r;
}

// A step as the reports write it; `with_output`: its stdout and stderr too.
nlohmann::json StepJson(const BootStepResult& step, bool with_output) {
  nlohmann::json j = {
      {"argv", step.argv}, {"ran", step.ran}, {"passed", step.passed()}, {"status", step.status()}};
  if (step.ran) {
    j["exit_code"] = step.exit_code;
    j["signal"] = step.signal;
  } else {
    j["error"] = step.error;
  }
  if (with_output) {
    j["stdout"] = step.out;
    j["stderr"] = step.err;
  }
  return j;
}

nlohmann::json StepsJson(const std::vector<BootStepResult>& steps, bool with_output) {
  nlohmann::json out = nlohmann::json::array();
  for (const BootStepResult& step : steps) out.push_back(StepJson(step, with_output));
  return out;
}

// A case's console log as its shard wrote it: console/<BootCaseFileName(name)>.log beneath the
// shard's directory, a regular file, no link on the way, at most kMaxConsoleBytes. The name
// the report gives must be exactly that one: results.json is another machine's data, and a
// name such as /proc/self/environ or ../../secret would copy a host file into the JUnit.
std::string ReadConsoleLog(const fs::path& dir, const BootCaseResult& r, const std::string& named,
                           std::vector<std::string>& problems) {
  const std::string expected =
      std::string(kBootConsoleDir) + "/" + BootCaseFileName(r.name) + ".log";
  if (named != expected) {
    problems.push_back((dir / kBootReportFile).string() + ": case '" + r.name +
                       "' names the console log '" + named + "', not its own '" + expected +
                       "'; not read");
    return "";
  }
  try {
    return ReadRegularFileBeneath(dir.string(), expected, kMaxConsoleBytes);
  } catch (const UnsafePath& e) {
    problems.push_back(std::string(e.what()) + "; not read");
  } catch (const Error&) {
    // A missing log (the case was never started) is no problem of the report's.
  }
  return "";
}

// Reads one shard's directory; returns nullopt (with the reason in `problems`) when its
// results cannot be trusted.
std::optional<ShardFile> ReadShard(const fs::path& dir, std::vector<std::string>& problems) {
  const fs::path report = dir / kBootReportFile;
  ShardFile shard;
  shard.dir = dir;
  try {
    const nlohmann::json j =
        ParseBoundedJson(ReadRegularFileBeneath(dir.string(), kBootReportFile, kMaxReportBytes));
    const JsonFields fields(j, report.string());
    if (fields.IntOr("kvmrun_boot_report", 0, 0, 1000) != 1) {
      throw MalformedJson(report.string(), "kvmrun_boot_report", "not 1");
    }
    shard.shard = ParseShard(fields.String("shard"));
    shard.suite = fields.StringArray("suite");
    const auto& results = fields.Array("results");
    for (std::size_t i = 0; i < results.size(); ++i) {
      const JsonFields r(results[i], report.string() + ": results[" + std::to_string(i) + "]");
      shard.results.push_back(ResultFromJson(r));
      const std::string log = r.StringOr("console_log", "");
      if (!log.empty()) {
        shard.results.back().console = ReadConsoleLog(dir, shard.results.back(), log, problems);
      }
    }
  } catch (const std::exception& e) {
    problems.push_back(report.string() + ": not a kvmrun boot report (" + e.what() + ")");
    return std::nullopt;
  }
  // The JUnit file a CI system reads must say the same as the report.
  const fs::path junit = dir / kBootJunitFile;
  std::string xml;
  try {
    xml = ReadRegularFileBeneath(dir.string(), kBootJunitFile, kMaxReportBytes);
  } catch (const Error& e) {
    problems.push_back(junit.string() + ": cannot be read (" + e.what() + ")");
    return std::nullopt;
  }
  pugi::xml_document doc;
  const pugi::xml_parse_result parsed = doc.load_buffer(xml.data(), xml.size());
  if (!parsed) {
    problems.push_back(junit.string() + ": corrupt JUnit XML (" + parsed.description() +
                       " at byte " + std::to_string(parsed.offset) + ")");
    return std::nullopt;
  }
  std::multiset<std::string> in_junit, in_report;
  for (const pugi::xpath_node& node : doc.select_nodes("//testcase")) {
    in_junit.insert(node.node().attribute("name").as_string());
  }
  for (const BootCaseResult& r : shard.results) in_report.insert(r.name);
  if (in_junit != in_report) {
    problems.push_back(junit.string() + ": its test cases are not the ones in " +
                       report.filename().string());
    return std::nullopt;
  }
  return shard;
}

}  // namespace

std::string ShardDirName(const Shard& shard) {
  return "shard-" + std::to_string(shard.index) + "-of-" + std::to_string(shard.count);
}

nlohmann::json BootReportJson(const std::vector<std::string>& suite, const Shard& shard,
                              const std::vector<BootCaseResult>& results) {
  nlohmann::json out = {{"kvmrun_boot_report", 1},
                        {"shard", ToString(shard)},
                        {"suite", suite},
                        {"results", nlohmann::json::array()}};
  for (const BootCaseResult& r : results) {
    out["results"].push_back(
        {{"name", r.name},
         {"outcome", ToString(r.outcome)},
         {"passed", r.passed()},
         {"message", r.message},
         {"matched_line", r.matched_line},
         {"accel", ToString(r.accel)},
         {"elapsed_s", Seconds(r.elapsed)},
         {"timeout_s", Seconds(r.timeout)},
         {"console_log", std::string(kBootConsoleDir) + "/" + BootCaseFileName(r.name) + ".log"},
         {"steps", StepsJson(r.steps, true)}});
  }
  return out;
}

std::string PrepareShardDir(const std::string& results_dir, const Shard& shard) {
  const std::string dir = results_dir + "/" + ShardDirName(shard);
  try {
    EnsureSafeDir(results_dir, DirMode::kShared);
    EnsureSafeDir(dir, DirMode::kShared);
    EnsureSafeDir(dir + "/" + kBootConsoleDir, DirMode::kShared);
  } catch (const UsageError& e) {
    throw UsageError("results_dir", e.what());
  }
  return dir;
}

void WriteShardResults(const std::string& shard_dir, const std::vector<std::string>& suite,
                       const Shard& shard, const std::vector<BootCaseResult>& results,
                       const JunitReport& junit) {
  const std::string console_dir = shard_dir + "/" + kBootConsoleDir;
  for (const BootCaseResult& r : results) {
    WriteFileAtomically(console_dir, BootCaseFileName(r.name) + ".log", r.console, 0644);
  }
  WriteFileAtomically(shard_dir, kBootJunitFile, JunitXml(results, junit), 0644);
  WriteFileAtomically(shard_dir, kBootReportFile,
                      DumpJson(BootReportJson(suite, shard, results), 2) + "\n", 0644);
}

std::size_t MergedBootReport::passed() const {
  return static_cast<std::size_t>(std::count_if(
      cases.begin(), cases.end(), [](const MergedCase& c) { return c.result.passed(); }));
}

namespace {

MergedBootReport MergeShards(const std::vector<std::string>& dirs) {
  MergedBootReport merged;
  std::vector<ShardFile> shards;
  for (const std::string& dir : dirs) {
    const std::vector<fs::path> found = ShardDirs(dir);
    if (found.empty()) merged.problems.push_back(dir + ": no " + kBootReportFile + " in it");
    for (const fs::path& shard_dir : found) {
      if (auto shard = ReadShard(shard_dir, merged.problems)) shards.push_back(std::move(*shard));
    }
  }
  if (shards.empty()) return merged;

  // Every shard must have run the same suite, split the same way.
  const ShardFile& first = shards.front();
  merged.shard_count = first.shard.count;
  std::map<int, std::string> seen_shards;
  for (const ShardFile& s : shards) {
    if (s.suite != first.suite || s.shard.count != first.shard.count) {
      merged.problems.push_back(s.dir.string() + ": shard " + ToString(s.shard) +
                                " ran another suite or split than " + first.dir.string() +
                                " (shard " + ToString(first.shard) + ")");
      continue;
    }
    if (const auto [it, fresh] = seen_shards.emplace(s.shard.index, s.dir.string()); !fresh) {
      merged.problems.push_back("shard " + ToString(s.shard) + " reported twice: " + it->second +
                                " and " + s.dir.string());
    }
  }
  for (int i = 1; i <= merged.shard_count; ++i) {
    if (!seen_shards.count(i)) {
      merged.problems.push_back("shard " + ToString(Shard{i, merged.shard_count}) +
                                " has no results (it did not run, or died)");
    }
  }

  std::map<std::string, std::vector<std::pair<BootCaseResult, std::string>>> by_name;
  const std::set<std::string> suite(first.suite.begin(), first.suite.end());
  for (const ShardFile& s : shards) {
    if (s.suite != first.suite || s.shard.count != first.shard.count) continue;
    for (const BootCaseResult& r : s.results) {
      if (!suite.count(r.name)) {
        merged.problems.push_back("case '" + r.name + "' (shard " + ToString(s.shard) +
                                  ") is not in the suite");
        continue;
      }
      by_name[r.name].emplace_back(r, ToString(s.shard));
    }
  }
  for (const std::string& name : first.suite) {
    MergedCase c;
    const auto it = by_name.find(name);
    c.shard = ToString(Shard{ShardOfCase(name, merged.shard_count), merged.shard_count});
    if (it == by_name.end()) {
      c.result.name = name;
      c.result.outcome = BootOutcome::kError;
      c.result.message = "no result: shard " + c.shard + " did not report it";
      merged.problems.push_back("case '" + name + "' has no result (shard " + c.shard + ")");
    } else {
      c.result = it->second.front().first;
      c.shard = it->second.front().second;
      if (it->second.size() > 1) {
        std::string where;
        for (const auto& [result, shard] : it->second) where += (where.empty() ? "" : ", ") + shard;
        merged.problems.push_back("case '" + name + "' has " + std::to_string(it->second.size()) +
                                  " results (shards " + where + ")");
      }
    }
    merged.cases.push_back(std::move(c));
  }
  return merged;
}

}  // namespace

MergedBootReport MergeBootReports(const std::vector<std::string>& dirs) {
  if (dirs.empty()) throw UsageError("no results directory given");
  MergedBootReport merged = MergeShards(dirs);
  // Problems quote what the shards' files hold (a parser's message can carry their bytes):
  // they are text for a person, escaped once here for every reader of the report.
  for (std::string& problem : merged.problems) problem = SafeText(problem);
  return merged;
}

nlohmann::json MergedBootReportJson(const MergedBootReport& report) {
  nlohmann::json cases = nlohmann::json::array();
  for (const MergedCase& c : report.cases) {
    cases.push_back({{"name", c.result.name},
                     {"shard", c.shard},
                     {"outcome", ToString(c.result.outcome)},
                     {"passed", c.result.passed()},
                     {"message", c.result.message},
                     {"elapsed_s", Seconds(c.result.elapsed)},
                     {"steps", StepsJson(c.result.steps, false)}});
  }
  return {{"ok", report.ok()},
          {"passed", report.passed()},
          {"failed", report.cases.size() - report.passed()},
          {"shards", report.shard_count},
          {"problems", report.problems},
          {"cases", cases}};
}

}  // namespace kvmrun

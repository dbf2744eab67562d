#include "kvmrun/boot_report.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <pugixml.hpp>
#include <set>
#include <sstream>

#include "kvmrun/error.h"
#include "policy/names.h"

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

// The file's text, or nullopt when it is missing, too large or unreadable.
std::optional<std::string> ReadSmallFile(const fs::path& path, std::uintmax_t limit) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec || size > limit) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) return std::nullopt;
  return text.str();
}

// The shard directories under `dir`: itself when it holds results.json, else its children
// (a results directory), else its grandchildren (a directory of results directories).
std::vector<fs::path> ShardDirs(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_regular_file(dir / kBootReportFile, ec)) return {dir};
  std::vector<fs::path> found;
  for (const auto& child : fs::directory_iterator(dir, ec)) {
    if (!child.is_directory(ec)) continue;
    if (fs::is_regular_file(child.path() / kBootReportFile, ec)) {
      found.push_back(child.path());
      continue;
    }
    for (const auto& grandchild : fs::directory_iterator(child.path(), ec)) {
      if (fs::is_regular_file(grandchild.path() / kBootReportFile, ec)) {
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

BootCaseResult ResultFromJson(const nlohmann::json& j) {
  BootCaseResult r;
  r.name = j.at("name").get<std::string>();
  const auto outcome = FindByName(j.at("outcome").get<std::string>(), kAllBootOutcomes);
  if (!outcome) throw std::runtime_error("unknown outcome " + j.at("outcome").dump());
  r.outcome = *outcome;
  r.message = j.value("message", "");
  r.matched_line = j.value("matched_line", "");
  r.accel = j.value("accel", "tcg") == "kvm" ? Accel::kKvm : Accel::kTcg;
  r.elapsed = Millis(j.value("elapsed_s", 0.0));
  r.timeout = Millis(j.value("timeout_s", 0.0));
  return r;
}

// Reads one shard's directory; returns nullopt (with the reason in `problems`) when its
// results cannot be trusted.
std::optional<ShardFile> ReadShard(const fs::path& dir, std::vector<std::string>& problems) {
  const fs::path report = dir / kBootReportFile;
  const auto text = ReadSmallFile(report, kMaxReportBytes);
  if (!text) {
    problems.push_back(report.string() + ": cannot be read");
    return std::nullopt;
  }
  ShardFile shard;
  shard.dir = dir;
  try {
    const nlohmann::json j = nlohmann::json::parse(*text);
    if (j.value("kvmrun_boot_report", 0) != 1) throw std::runtime_error("no kvmrun_boot_report: 1");
    shard.shard = ParseShard(j.at("shard").get<std::string>());
    shard.suite = j.at("suite").get<std::vector<std::string>>();
    for (const nlohmann::json& r : j.at("results")) {
      shard.results.push_back(ResultFromJson(r));
      const std::string log = r.value("console_log", "");
      if (!log.empty()) {
        shard.results.back().console = ReadSmallFile(dir / log, kMaxConsoleBytes).value_or("");
      }
    }
  } catch (const std::exception& e) {
    problems.push_back(report.string() + ": not a kvmrun boot report (" + e.what() + ")");
    return std::nullopt;
  }
  // The JUnit file a CI system reads must say the same as the report.
  const fs::path junit = dir / kBootJunitFile;
  pugi::xml_document doc;
  const pugi::xml_parse_result parsed = doc.load_file(junit.c_str());
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
         {"console_log", std::string(kBootConsoleDir) + "/" + BootCaseFileName(r.name) + ".log"}});
  }
  return out;
}

std::size_t MergedBootReport::passed() const {
  return static_cast<std::size_t>(std::count_if(
      cases.begin(), cases.end(), [](const MergedCase& c) { return c.result.passed(); }));
}

MergedBootReport MergeBootReports(const std::vector<std::string>& dirs) {
  if (dirs.empty()) throw UsageError("no results directory given");
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

nlohmann::json MergedBootReportJson(const MergedBootReport& report) {
  nlohmann::json cases = nlohmann::json::array();
  for (const MergedCase& c : report.cases) {
    cases.push_back({{"name", c.result.name},
                     {"shard", c.shard},
                     {"outcome", ToString(c.result.outcome)},
                     {"passed", c.result.passed()},
                     {"message", c.result.message},
                     {"elapsed_s", Seconds(c.result.elapsed)}});
  }
  return {{"ok", report.ok()},
          {"passed", report.passed()},
          {"failed", report.cases.size() - report.passed()},
          {"shards", report.shard_count},
          {"problems", report.problems},
          {"cases", cases}};
}

}  // namespace kvmrun

// A boot-test shard's results on disk, and the merge that judges a sharded suite
// (docs/scale-out.md). Each shard writes into its own directory:
//   results.json   {"kvmrun_boot_report": 1, "shard": "I/N", "suite": [every case name of
//                  the expanded suite], "results": [one per case the shard ran]}
//   junit.xml      the same results as JUnit XML
//   console/       NAME.log per case (BootCaseFileName)
// The merge reads every shard's directory, and fails the suite when a case failed, when a case
// of the suite has no result (a shard that died is not a pass), when a case has two, or when a
// file is corrupt or the shards disagree about the suite.
#ifndef KVMRUN_BOOT_REPORT_H_
#define KVMRUN_BOOT_REPORT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kvmrun/boot_case.h"
#include "kvmrun/boot_matrix.h"
#include "kvmrun/junit.h"

namespace kvmrun {

inline constexpr char kBootReportFile[] = "results.json";
inline constexpr char kBootJunitFile[] = "junit.xml";
inline constexpr char kBootConsoleDir[] = "console";

// The directory name of a shard under a results directory: "shard-2-of-4".
std::string ShardDirName(const Shard& shard);

// results.json for a shard that ran `results` of the suite `suite` (all its case names).
nlohmann::json BootReportJson(const std::vector<std::string>& suite, const Shard& shard,
                              const std::vector<BootCaseResult>& results);

// Makes (or checks) `results_dir` and the shard's directory in it with its console directory,
// each this user's and writable by nobody else (a results directory someone else can write
// could hold planted links); returns the shard's directory. Throws UsageError (field
// "results_dir") naming the directory and what is wrong with it.
std::string PrepareShardDir(const std::string& results_dir, const Shard& shard);

// Writes a shard's files into `shard_dir` (made by PrepareShardDir): each console log, then
// junit.xml, and last results.json, so that a directory holding results.json is complete. Every
// file is created afresh and renamed into place, never written through a link. Throws Error.
void WriteShardResults(const std::string& shard_dir, const std::vector<std::string>& suite,
                       const Shard& shard, const std::vector<BootCaseResult>& results,
                       const JunitReport& junit);

struct MergedCase {
  BootCaseResult result;  // a case without a result is an error "no result"
  std::string shard;      // "I/N" that ran it (or should have)
};

struct MergedBootReport {
  int shard_count = 0;
  std::vector<MergedCase> cases;      // every case of the suite, in suite order
  std::vector<std::string> problems;  // missing shards and cases, duplicates, corrupt files
  std::size_t passed() const;
  // Every case has one result and passed, and nothing is wrong with the files.
  bool ok() const { return problems.empty() && passed() == cases.size(); }
};

// Reads the shards' directories found under `dirs` (each a shard directory, or a results
// directory holding shard-*-of-N directories). Throws UsageError only when `dirs` is empty;
// everything else is a problem in the report.
MergedBootReport MergeBootReports(const std::vector<std::string>& dirs);

// The merged report as JSON: {"ok", "passed", "failed", "shards", "problems", "cases": [...]}.
nlohmann::json MergedBootReportJson(const MergedBootReport& report);

}  // namespace kvmrun

#endif  // KVMRUN_BOOT_REPORT_H_

// kvmrun report merge: the judge of a sharded boot-test suite (docs/scale-out.md).
#include <iostream>

#include "cli/commands.h"
#include "core/safe_text.h"
#include "kvmrun/boot_report.h"
#include "kvmrun/error.h"
#include "kvmrun/junit.h"
#include "kvmrun/qmp_codec.h"
#include "policy/text_table.h"

namespace kvmrun::cli {
namespace {

int Merge(const po::variables_map& vm, const std::vector<std::string>& operands) {
  const std::vector<std::string> dirs(operands.begin() + 1, operands.end());
  if (dirs.empty()) throw UsageError("report merge takes one or more results directories");
  const MergedBootReport merged = MergeBootReports(dirs);

  std::vector<TextRow> rows = {{"CASE", "SHARD", "RESULT", "TIME", "MESSAGE"}};
  std::vector<BootCaseResult> results;
  for (const MergedCase& c : merged.cases) {
    rows.push_back({c.result.name, c.shard, c.result.passed() ? "pass" : "FAIL",
                    SecondsText(c.result.elapsed), c.result.message});
    results.push_back(c.result);
  }
  std::cout << FormatTable(rows);
  for (const std::string& problem : merged.problems) {
    std::cout << "problem: " << SafeText(problem) << "\n";
  }
  std::cout << merged.passed() << " passed, " << merged.cases.size() - merged.passed()
            << " failed, " << merged.problems.size() << " problem(s), " << merged.shard_count
            << " shard(s): " << (merged.ok() ? "ok" : "NOT OK") << std::endl;
  if (vm.count("junit")) {
    WriteTextFile(vm["junit"].as<std::string>(),
                  JunitXml(results, {"kvmrun boot-test (merged)", UtcTimestamp(), HostName()}),
                  "--junit");
  }
  if (vm.count("json")) {
    WriteTextFile(vm["json"].as<std::string>(), DumpJson(MergedBootReportJson(merged), 2) + "\n",
                  "--json");
  }
  return merged.ok() ? kExitOk : kExitFailure;
}

}  // namespace

int ReportCommand(const Args& args) {
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("operands", po::value<std::vector<std::string>>()->value_name("ACTION ARGS"),
       "the action and its operands, given as words: merge DIR...")
      ("junit", po::value<std::string>()->value_name("FILE"),
       "write the merged JUnit XML report (a case without a result is an error in it)")
      ("json", po::value<std::string>()->value_name("FILE"), "write the merged report as JSON");
  // clang-format on
  po::positional_options_description positional;
  positional.add("operands", -1);
  const po::variables_map vm = Parse(args, options, &positional);
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun report merge DIR... [--junit FILE] [--json FILE]",
        "merge: joins the results the shards of a boot-test suite wrote (boot-test --shard\n"
        "--results DIR) and judges the suite: every case of the expanded matrix must have\n"
        "exactly one result, and pass. A shard that died, a case run twice, a corrupt\n"
        "results.json or junit.xml, or shards that ran different suites are problems. Each\n"
        "DIR is a shard's directory, a results directory holding shard-I-of-N directories,\n"
        "or a directory of those (an artifact download). Prints a table and a summary line.\n"
        "Exit: 0 every case passed and nothing is missing, 1 otherwise, 2 bad usage.\n\n"
        "Examples:\n"
        "  kvmrun report merge results/ --junit all.xml --json all.json\n"
        "  kvmrun report merge shard-1-of-2 shard-2-of-2",
        options, &positional);
    return kExitOk;
  }
  const auto operands =
      vm.count("operands") ? vm["operands"].as<std::vector<std::string>>() : Args{};
  if (operands.empty()) throw UsageError("an action is required; valid: merge");
  if (operands[0] == "merge") return Merge(vm, operands);
  throw UsageError("invalid action '" + operands[0] + "'; valid: merge");
}

}  // namespace kvmrun::cli

// Matrix suites, shards and the merge, without booting: expansion and its names, a split that
// gives every case exactly one shard and keeps it when cases are added, the engines' variables,
// and a merge that fails on a missing shard, a duplicate case, a failed case or a corrupt file.
#include "kvmrun/boot_matrix.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "kvmrun/boot_report.h"
#include "kvmrun/error.h"
#include "kvmrun/junit.h"
#include "tests/support/qemu_process.h"
#include "tests/support/run_command.h"

namespace kvmrun {
namespace {

namespace fs = std::filesystem;

TEST(BootMatrixTest, EveryCaseRunsWithEveryCombinationNamedByItsAxes) {
  const nlohmann::json suite = nlohmann::json::parse(R"({
    "matrix": {"os": ["linux", "windows-11"], "append": ["a", "b", "c"]},
    "cases": [{"name": "smoke", "expect": "ok"}, {"expect": "x"}]})");
  const nlohmann::json cases = ExpandBootMatrix(suite);
  ASSERT_EQ(cases.size(), 12u);
  EXPECT_EQ(cases[0]["name"], "smoke[append=a,os=linux]");
  EXPECT_EQ(cases[1]["name"], "smoke[append=a,os=windows-11]");
  EXPECT_EQ(cases[5]["name"], "smoke[append=c,os=windows-11]");
  EXPECT_EQ(cases[6]["name"], "case-2[append=a,os=linux]");
  EXPECT_EQ(cases[5]["append"], "c");
  EXPECT_EQ(cases[5]["os"], "windows-11");
  EXPECT_EQ(cases[5]["expect"], "ok");
  std::set<std::string> names;
  for (const auto& c : cases) names.insert(c["name"].get<std::string>());
  EXPECT_EQ(names.size(), 12u);

  // The cases' own parser takes them, axis values included.
  BootCase defaults;
  defaults.spec.kernel = "/bin/true";
  const std::vector<BootCase> parsed = BootCasesFromJson(suite, defaults);
  ASSERT_EQ(parsed.size(), 12u);
  EXPECT_EQ(parsed[1].spec.os, GuestOs::kWindows11);
  EXPECT_EQ(parsed[1].spec.append, "a");
  EXPECT_EQ(parsed[1].name, "smoke[append=a,os=windows-11]");

  // An array is a suite without a matrix.
  const nlohmann::json plain = nlohmann::json::parse(R"([{"name": "x"}])");
  EXPECT_EQ(ExpandBootMatrix(plain), plain);
}

TEST(BootCasesFromJsonTest, PathsInTheFileAreTheFilesAndErrorsNameTheCase) {
  BootCase defaults;
  defaults.spec.kernel = "relative/vmlinuz";  // the command line's: left as it is
  const nlohmann::json suite = nlohmann::json::parse(R"([
      {"name": "a", "kernel": "k/vmlinuz", "initrd": "../i.cpio", "disk": ["d.img,format=raw"],
       "qemu": "./bin/qemu"},
      {"name": "b", "kernel": "/abs/vmlinuz", "qemu": "qemu-system-x86_64"},
      {"name": "c"}])");
  const std::vector<BootCase> cases = BootCasesFromJson(suite, defaults, "/suites/nightly");
  ASSERT_EQ(cases.size(), 3u);
  EXPECT_EQ(cases[0].spec.kernel, "/suites/nightly/k/vmlinuz");
  EXPECT_EQ(cases[0].spec.initrd, "/suites/i.cpio");
  ASSERT_EQ(cases[0].spec.disks.size(), 1u);
  EXPECT_EQ(cases[0].spec.disks[0].path, "/suites/nightly/d.img");
  EXPECT_EQ(cases[0].spec.qemu, "/suites/nightly/bin/qemu");
  EXPECT_EQ(cases[1].spec.kernel, "/abs/vmlinuz");
  EXPECT_EQ(cases[1].spec.qemu, "qemu-system-x86_64");  // looked up in PATH
  EXPECT_EQ(cases[2].spec.kernel, "relative/vmlinuz");

  // Without a directory, as given.
  EXPECT_EQ(BootCasesFromJson(suite, defaults)[0].spec.kernel, "k/vmlinuz");

  try {
    BootCasesFromJson(
        nlohmann::json::parse(R"([{"name": "ok"}, {"name": "late", "timeout": "x"}])"), defaults);
    ADD_FAILURE() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("case 2 ('late')"), std::string::npos) << e.what();
  }
}

TEST(BootCasesFromJsonTest, OneSavedVmServesOnlyCasesThatBootIt) {
  BootCase defaults;
  defaults.spec.kernel = "/k";
  const auto suite = [&](const char* json) {
    return BootCasesFromJson(nlohmann::json::parse(json), defaults);
  };
  // Cases that differ only in what they expect, fail on, run or wait for share one VM.
  EXPECT_NO_THROW(ValidateOneVmForSuite(suite(
      R"([{"name": "a", "expect": "x"}, {"name": "b", "run": ["true"], "timeout": 5,
          "fail": ["y"]}])")));
  EXPECT_NO_THROW(ValidateOneVmForSuite({}));
  for (const auto& [json, field] : std::vector<std::pair<const char*, std::string>>{
           {R"([{"name": "a"}, {"name": "b", "os": "windows-11"}])", "(os 'windows-11'"},
           {R"([{"name": "a"}, {"name": "b", "memory": "1G"}])", "(memory '1024M', not '512M')"},
           {R"([{"name": "a"}, {"name": "b", "disk": ["d.img"]}])", "(disk 'd.img:raw"},
           {R"([{"name": "a"}, {"name": "b", "kernel": "/other"}])", "(kernel '/other'"}}) {
    try {
      ValidateOneVmForSuite(suite(json));
      ADD_FAILURE() << "no error for " << json;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("case 'b' boots another VM than case 'a' " + field),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(BootMatrixTest, BadMatricesAreRefusedWithTheReason) {
  for (const char* bad : {
           R"({"cases": []})",
           R"({"matrix": {"os": ["linux"]}})",
           R"({"cases": [{}], "matrix": {"os": []}})",
           R"({"cases": [{}], "matrix": {"os": "linux"}})",
           R"({"cases": [{}], "matrix": {"os": [1]}})",
           R"({"cases": [{}], "matrix": {"name": ["a"]}})",
           R"({"cases": [{"os": "linux"}], "matrix": {"os": ["linux"]}})",
           R"({"cases": [{}], "axes": {}})",
           R"("cases")",
       }) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(ExpandBootMatrix(nlohmann::json::parse(bad)), UsageError);
  }
  try {
    ExpandBootMatrix(nlohmann::json::parse(R"({"cases": [{"name": "s", "os": "linux"}],
                                               "matrix": {"os": ["linux"]}})"));
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "case 's' sets 'os', which is a matrix axis");
  }
}

std::vector<std::string> Names(int count, const std::string& prefix = "case-") {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) names.push_back(prefix + std::to_string(i));
  return names;
}

TEST(ShardTest, EveryCaseIsInExactlyOneShardForOneToSixteenShards) {
  const std::vector<std::string> names = Names(200);
  for (int count = 1; count <= 16; ++count) {
    SCOPED_TRACE(count);
    std::map<int, int> sizes;
    for (const std::string& name : names) {
      const int shard = ShardOfCase(name, count);
      ASSERT_GE(shard, 1);
      ASSERT_LE(shard, count);
      ++sizes[shard];  // one shard per case: the function's value
    }
    // Balanced enough to be worth sharding: no shard has more than twice its share.
    for (const auto& [shard, size] : sizes) EXPECT_LE(size, 2 * 200 / count + 1) << shard;
  }
}

TEST(ShardTest, AddingCasesMovesNoOtherCase) {
  const std::vector<std::string> before = Names(50);
  std::map<std::string, int> placed;
  for (const std::string& name : before) placed[name] = ShardOfCase(name, 4);
  std::vector<std::string> after = Names(80, "new-");
  after.insert(after.end(), before.begin(), before.end());
  for (const std::string& name : before) EXPECT_EQ(ShardOfCase(name, 4), placed[name]) << name;
}

TEST(ShardTest, ParsesIOfNAndRejectsTheRest) {
  EXPECT_EQ(ParseShard("1/1"), (Shard{1, 1}));
  EXPECT_EQ(ParseShard("3/4"), (Shard{3, 4}));
  EXPECT_EQ(ToString(Shard{2, 5}), "2/5");
  for (const char* bad :
       {"0/2", "3/2", "1/0", "-1/2", "1/", "/2", "a/b", "1", "1/2/3", " 1/2", "1/4097", ""}) {
    SCOPED_TRACE(bad);
    try {
      ParseShard(bad, "--shard");
      FAIL() << "accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("valid: I/N with 1 <= I <= N <= 4096, or auto"),
                std::string::npos)
          << e.what();
    }
  }
}

Shard FromEnv(const std::map<std::string, std::string>& env, std::optional<int> count = {}) {
  return ShardFromEnvironment(
      [&](const char* name) -> const char* {
        const auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      count);
}

TEST(ShardTest, AutoReadsEachEnginesVariables) {
  // Slurm: --array=0-3 or --array=1-4, both four shards.
  EXPECT_EQ(FromEnv({{"SLURM_ARRAY_TASK_ID", "0"},
                     {"SLURM_ARRAY_TASK_MIN", "0"},
                     {"SLURM_ARRAY_TASK_COUNT", "4"}}),
            (Shard{1, 4}));
  EXPECT_EQ(FromEnv({{"SLURM_ARRAY_TASK_ID", "4"},
                     {"SLURM_ARRAY_TASK_MIN", "1"},
                     {"SLURM_ARRAY_TASK_COUNT", "4"}}),
            (Shard{4, 4}));
  // Kubernetes: 0-based index, the count given.
  EXPECT_EQ(FromEnv({{"JOB_COMPLETION_INDEX", "2"}}, 3), (Shard{3, 3}));
  EXPECT_THROW(FromEnv({{"JOB_COMPLETION_INDEX", "2"}}), UsageError);
  EXPECT_THROW(FromEnv({{"JOB_COMPLETION_INDEX", "3"}}, 3), UsageError);
  // GitLab: 1-based.
  EXPECT_EQ(FromEnv({{"CI_NODE_INDEX", "2"}, {"CI_NODE_TOTAL", "2"}}), (Shard{2, 2}));
  EXPECT_THROW(FromEnv({{"CI_NODE_INDEX", "2"}}), UsageError);
  EXPECT_THROW(FromEnv({{"CI_NODE_INDEX", "x"}, {"CI_NODE_TOTAL", "2"}}), UsageError);
  try {
    FromEnv({});
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("$SLURM_ARRAY_TASK_ID, $JOB_COMPLETION_INDEX, "
                                         "$CI_NODE_INDEX"),
              std::string::npos)
        << e.what();
  }
}

// Shard directories written as boot-test --results writes them.
class MergeTest : public ::testing::Test {
 protected:
  BootCaseResult Result(const std::string& name, bool passed) {
    BootCaseResult r;
    r.name = name;
    r.outcome = passed ? BootOutcome::kPassed : BootOutcome::kTimeout;
    r.message = passed ? "matched" : "no match within 60 s";
    r.console = "console of " + name + "\n";
    r.elapsed = std::chrono::milliseconds(1500);
    return r;
  }
  // Writes shard `shard` of `suite` with results for `ran` (all passing unless in `failed`).
  std::string WriteShard(const Shard& shard, const std::vector<std::string>& ran,
                         const std::set<std::string>& failed = {}) {
    const std::string dir = dir_.path() + "/results/" + ShardDirName(shard);
    fs::create_directories(dir + "/console");
    std::vector<BootCaseResult> results;
    for (const std::string& name : ran) {
      results.push_back(Result(name, !failed.count(name)));
      std::ofstream(dir + "/console/" + BootCaseFileName(name) + ".log") << results.back().console;
    }
    std::ofstream(dir + "/junit.xml") << JunitXml(results, {"s", "2026-12-01T00:00:00", "h"});
    std::ofstream(dir + "/results.json") << BootReportJson(suite_, shard, results).dump();
    return dir;
  }
  // Each shard runs its own cases.
  void WriteAll(int count, const std::set<std::string>& failed = {}) {
    for (int i = 1; i <= count; ++i) WriteShard({i, count}, Mine({i, count}), failed);
  }
  std::vector<std::string> Mine(const Shard& shard) const {
    std::vector<std::string> mine;
    for (const std::string& name : suite_) {
      if (ShardOfCase(name, shard.count) == shard.index) mine.push_back(name);
    }
    return mine;
  }
  bool HasProblem(const MergedBootReport& m, const std::string& text) const {
    return std::any_of(m.problems.begin(), m.problems.end(),
                       [&](const std::string& p) { return p.find(text) != std::string::npos; });
  }

  testing::TempDir dir_;
  std::vector<std::string> suite_ = Names(12, "boot[n=");
};

TEST_F(MergeTest, AllShardsAllPassedIsOkWithEveryCaseOnce) {
  WriteAll(3);
  const MergedBootReport m = MergeBootReports({dir_.path() + "/results"});
  EXPECT_TRUE(m.ok()) << nlohmann::json(m.problems).dump();
  EXPECT_EQ(m.shard_count, 3);
  ASSERT_EQ(m.cases.size(), 12u);
  for (std::size_t i = 0; i < m.cases.size(); ++i) {
    EXPECT_EQ(m.cases[i].result.name, suite_[i]);
    EXPECT_EQ(m.cases[i].result.console, "console of " + suite_[i] + "\n");
  }
  EXPECT_EQ(MergedBootReportJson(m)["passed"], 12);
}

TEST_F(MergeTest, RunStepsKeepTheirStatusAndOutputThroughTheMerge) {
  BootCaseResult r = Result(suite_[0], false);
  r.outcome = BootOutcome::kCommandFailed;
  BootStepResult ok;
  ok.argv = {"make", "-C", "/mnt", "check"};
  ok.ran = true;
  ok.out = "3 tests passed\n";
  BootStepResult failed = ok;
  failed.exit_code = 3;
  failed.err = "broken\n";
  BootStepResult lost;
  lost.argv = {"true"};
  lost.error = "guest-exec timed out";
  r.steps = {ok, failed, lost};
  const nlohmann::json report = BootReportJson({suite_[0]}, {1, 1}, {r});
  const nlohmann::json& steps = report["results"][0]["steps"];
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[1]["exit_code"], 3);
  EXPECT_EQ(steps[1]["stderr"], "broken\n");
  EXPECT_EQ(steps[2]["status"], "guest-exec timed out");

  const std::string dir = dir_.path() + "/results/" + ShardDirName({1, 1});
  fs::create_directories(dir + "/console");
  std::ofstream(dir + "/console/" + BootCaseFileName(r.name) + ".log") << r.console;
  std::ofstream(dir + "/junit.xml") << JunitXml({r}, {"s", "2026-12-01T00:00:00", "h"});
  std::ofstream(dir + "/results.json") << report.dump();
  suite_ = {suite_[0]};
  const MergedBootReport m = MergeBootReports({dir_.path() + "/results"});
  ASSERT_EQ(m.cases.size(), 1u) << nlohmann::json(m.problems).dump();
  const std::vector<BootStepResult>& merged = m.cases[0].result.steps;
  ASSERT_EQ(merged.size(), 3u);
  EXPECT_EQ(merged[0].out, "3 tests passed\n");
  EXPECT_TRUE(merged[0].passed());
  EXPECT_EQ(merged[1].status(), "exit 3");
  EXPECT_FALSE(merged[2].ran);
  const nlohmann::json summary = MergedBootReportJson(m)["cases"][0]["steps"];
  EXPECT_EQ(summary[1]["status"], "exit 3");
  EXPECT_FALSE(summary[1].contains("stdout")) << "the merged summary carries statuses only";
}

TEST_F(MergeTest, AShardThatDiedIsNotAPass) {
  WriteAll(3);
  fs::remove_all(dir_.path() + "/results/" + ShardDirName({2, 3}));
  const MergedBootReport m = MergeBootReports({dir_.path() + "/results"});
  EXPECT_FALSE(m.ok());
  EXPECT_TRUE(HasProblem(m, "shard 2/3 has no results (it did not run, or died)"));
  for (const std::string& name : Mine({2, 3})) {
    EXPECT_TRUE(HasProblem(m, "case '" + name + "' has no result (shard 2/3)")) << name;
  }
  EXPECT_EQ(m.passed(), 12u - Mine({2, 3}).size());
}

TEST_F(MergeTest, ACaseRunTwiceAFailedCaseAndACorruptJunitFailTheSuite) {
  WriteAll(2);
  // Shard 1 ran again somewhere, and both copies are handed to the merge.
  fs::create_directories(dir_.path() + "/again");
  fs::copy(dir_.path() + "/results/" + ShardDirName({1, 2}),
           dir_.path() + "/again/" + ShardDirName({1, 2}), fs::copy_options::recursive);
  MergedBootReport m = MergeBootReports({dir_.path() + "/results", dir_.path() + "/again"});
  EXPECT_FALSE(m.ok());
  EXPECT_TRUE(HasProblem(m, "shard 1/2 reported twice"));
  EXPECT_TRUE(HasProblem(m, "has 2 results (shards 1/2, 1/2)"));
  fs::remove_all(dir_.path() + "/again");

  const std::string failed = Mine({2, 2}).front();
  WriteShard({2, 2}, Mine({2, 2}), {failed});
  m = MergeBootReports({dir_.path() + "/results"});
  EXPECT_TRUE(m.problems.empty());
  EXPECT_FALSE(m.ok());
  EXPECT_EQ(m.passed(), 11u);

  std::ofstream(dir_.path() + "/results/" + ShardDirName({2, 2}) + "/junit.xml")
      << "<testsuites><testsuite>";
  m = MergeBootReports({dir_.path() + "/results"});
  EXPECT_TRUE(HasProblem(m, "junit.xml: corrupt JUnit XML (")) << nlohmann::json(m.problems);
  std::ofstream(dir_.path() + "/results/" + ShardDirName({2, 2}) + "/results.json") << "{";
  m = MergeBootReports({dir_.path() + "/results"});
  EXPECT_TRUE(HasProblem(m, "results.json: not a kvmrun boot report"));
}

TEST_F(MergeTest, ShardsOfDifferentSuitesOrSplitsDoNotMerge) {
  WriteAll(2);
  WriteShard({1, 3}, {});
  MergedBootReport m = MergeBootReports({dir_.path() + "/results"});
  EXPECT_TRUE(HasProblem(m, "ran another suite or split")) << nlohmann::json(m.problems);
  EXPECT_FALSE(MergeBootReports({dir_.path() + "/nothing-here"}).ok());
}

// A shard's directory is another machine's data (docs/security.md): merge reads only the files
// a shard writes, beneath its directory, regular, bounded, and checks every field.
class HostileShardTest : public MergeTest {
 protected:
  std::string ShardDir() const { return dir_.path() + "/results/" + ShardDirName({1, 1}); }
  nlohmann::json Report() const {
    std::ifstream in(ShardDir() + "/results.json");
    return nlohmann::json::parse(in);
  }
  void Rewrite(const nlohmann::json& report) const {
    fs::remove(ShardDir() + "/results.json");
    std::ofstream(ShardDir() + "/results.json") << report.dump();
  }
  MergedBootReport Merge() const { return MergeBootReports({dir_.path() + "/results"}); }
};

TEST_F(HostileShardTest, AConsoleLogNameOutsideItsDirectoryIsNeverRead) {
  const std::string secret = dir_.path() + "/secret";
  std::ofstream(secret) << "CI_TOKEN=hunter2";
  WriteAll(1);
  for (const std::string& named :
       {std::string("/proc/self/environ"), secret, std::string("../../secret"),
        std::string("console/../../../secret"), std::string("console/") + "x.log"}) {
    nlohmann::json report = Report();
    report["results"][0]["console_log"] = named;
    Rewrite(report);
    const MergedBootReport m = Merge();
    EXPECT_TRUE(HasProblem(m, "names the console log")) << named;
    for (const MergedCase& c : m.cases) {
      EXPECT_EQ(c.result.console.find("hunter2"), std::string::npos) << named;
      EXPECT_EQ(c.result.console.find("PATH="), std::string::npos) << named;
    }
  }
}

TEST_F(HostileShardTest, LinksAndFifosInAShardAreRefusedNotFollowed) {
  const std::string secret = dir_.path() + "/secret";
  std::ofstream(secret) << "CI_TOKEN=hunter2";
  WriteAll(1);
  const std::string log = ShardDir() + "/console/" + BootCaseFileName(suite_[0]) + ".log";
  fs::remove(log);
  fs::create_symlink(secret, log);
  MergedBootReport m = Merge();
  EXPECT_TRUE(HasProblem(m, "symbolic link")) << nlohmann::json(m.problems).dump();
  EXPECT_EQ(m.cases[0].result.console, "");

  // A FIFO where junit.xml belongs: refused at once, not waited on.
  fs::remove(ShardDir() + "/junit.xml");
  ASSERT_EQ(mkfifo((ShardDir() + "/junit.xml").c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  m = Merge();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(HasProblem(m, "not a regular file")) << nlohmann::json(m.problems).dump();
  EXPECT_FALSE(m.ok());

  // A shard directory that is a link to another directory is not a shard.
  fs::remove_all(dir_.path() + "/results");
  fs::create_directories(dir_.path() + "/elsewhere");
  WriteShard({1, 1}, suite_);
  fs::rename(ShardDir(), dir_.path() + "/elsewhere/real");
  fs::create_directory_symlink(dir_.path() + "/elsewhere/real", ShardDir());
  m = Merge();
  EXPECT_TRUE(m.cases.empty());
  EXPECT_FALSE(m.ok());
}

TEST_F(HostileShardTest, FieldsOfTheWrongTypeOrOutOfRangeAreProblemsNotCrashes) {
  WriteAll(1);
  const nlohmann::json good = Report();
  const std::vector<std::pair<std::string, nlohmann::json>> changes = {
      {"/results/0/elapsed_s", 1e300},
      {"/results/0/elapsed_s", -1},
      {"/results/0/elapsed_s", "1.5"},
      {"/results/0/name", 5},
      {"/results/0/outcome", "pwned"},
      {"/results/0/timeout_s", nullptr},
      {"/results/0/steps", "all"},
      {"/results/0/steps", nlohmann::json::array({{{"argv", "make"}, {"ran", true}}})},
      {"/results/0/steps",
       nlohmann::json::array({{{"argv", {"x"}}, {"ran", true}, {"exit_code", 999}}})},
      {"/suite", "all"},
      {"/results", nlohmann::json::object()},
      {"/shard", 7},
      {"/kvmrun_boot_report", "1"},
  };
  for (const auto& [where, value] : changes) {
    nlohmann::json report = good;
    report[nlohmann::json::json_pointer(where)] = value;
    Rewrite(report);
    const MergedBootReport m = Merge();
    EXPECT_FALSE(m.ok()) << where;
    EXPECT_TRUE(HasProblem(m, "not a kvmrun boot report")) << where << " = " << value.dump();
  }
}

TEST(BootTestListTest, ListsTheExpandedMatrixAndEachShardsPart) {
  testing::TempDir dir;
  const std::string suite = dir.path() + "/suite.json";
  std::ofstream(suite) << R"({"matrix": {"os": ["linux", "windows-11", "freebsd"]},
      "cases": [{"name": "a", "kernel": "/bin/true", "expect": "x"},
                {"name": "b", "kernel": "/bin/true", "expect": "y"}]})";
  const auto all = testing::RunKvmrun({"boot-test", "--cases", suite, "--list"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(testing::Lines(all.out),
            (std::vector<std::string>{"a[os=linux]", "a[os=windows-11]", "a[os=freebsd]",
                                      "b[os=linux]", "b[os=windows-11]", "b[os=freebsd]"}));
  std::multiset<std::string> from_shards;
  for (const char* shard : {"1/3", "2/3", "3/3"}) {
    const auto part =
        testing::RunKvmrun({"boot-test", "--cases", suite, "--list", "--shard", shard});
    ASSERT_EQ(part.exit_code, 0) << part.err;
    for (const std::string& name : testing::Lines(part.out)) from_shards.insert(name);
  }
  const auto lines = testing::Lines(all.out);
  EXPECT_EQ(from_shards, std::multiset<std::string>(lines.begin(), lines.end()));
  const auto json = testing::RunKvmrun({"boot-test", "--cases", suite, "--list", "--json"});
  EXPECT_EQ(nlohmann::json::parse(json.out).size(), 6u) << json.out;

  for (const std::vector<std::string>& bad : {std::vector<std::string>{"--shard", "0/2"},
                                              {"--shard", "auto"},
                                              {"--shard-count", "2"},
                                              {"--json"}}) {
    std::vector<std::string> args = {"boot-test", "--cases", suite};
    args.insert(args.end(), bad.begin(), bad.end());
    const auto r = testing::RunKvmrun(args);
    EXPECT_EQ(r.exit_code, 2) << bad.front() << ": " << r.err;
    EXPECT_EQ(testing::Lines(r.err).size(), 1u) << r.err;
  }
}

TEST(ReportCliTest, MergeExitsOneWithTheReasonAndTwoOnBadUsage) {
  testing::TempDir dir;
  const auto none = testing::RunKvmrun({"report", "merge", dir.path()});
  EXPECT_EQ(none.exit_code, 1) << none.err;
  EXPECT_NE(none.out.find("problem: " + dir.path() + ": no results.json in it"), std::string::npos)
      << none.out;
  EXPECT_EQ(testing::RunKvmrun({"report", "merge"}).exit_code, 2);
  EXPECT_EQ(testing::RunKvmrun({"report", "split", dir.path()}).exit_code, 2);
}

}  // namespace
}  // namespace kvmrun

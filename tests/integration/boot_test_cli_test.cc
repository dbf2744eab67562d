// `kvmrun boot-test` on the real test guest, and many VMs at once through the library.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "kvmrun/boot_case.h"
#include "tests/support/qemu_binary.h"
#include "tests/support/qemu_process.h"
#include "tests/support/run_command.h"
#include "tests/support/scratch.h"
#include "tests/support/test_guest.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;

class BootTestCli : public ::testing::Test {
 protected:
  void SetUp() override {
    qemu_ = testing::TestQemuBinary();
    if (qemu_.empty()) GTEST_SKIP() << "qemu-system-x86_64 not installed";
    ASSERT_TRUE(std::filesystem::exists(testing::TestKernel())) << "run scripts/make-test-guest";
    std::filesystem::create_directories(dir_.path() + "/run");
  }
  testing::CommandResult BootTest(std::vector<std::string> extra, const std::string& append = "") {
    std::vector<std::string> args = {"boot-test",
                                     "--accel",
                                     "tcg",
                                     "--kernel",
                                     testing::TestKernel(),
                                     "--initrd",
                                     testing::TestInitrd(),
                                     "--append",
                                     "console=ttyS0 quiet panic=-1 " + append};
    args.insert(args.end(), extra.begin(), extra.end());
    testing::CommandOptions options;
    options.timeout = 180s;
    options.extra_env = {"XDG_RUNTIME_DIR=" + dir_.path() + "/run", "KVMRUN_QEMU=" + qemu_};
    return testing::RunKvmrun(args, options);
  }
  std::string Junit() const { return dir_.path() + "/junit.xml"; }
  testing::CommandResult ValidateJunit() const {
    return testing::RunCommand({"xmllint", "--noout", "--schema",
                                std::string(KVMRUN_SOURCE_DIR) + "/tests/support/junit.xsd",
                                Junit()});
  }

  std::string qemu_;
  testing::TempDir dir_;
};

// "Boot my kernel, run my tests inside, get the exit code": run steps through the guest agent,
// with the code under test on a share; a step's exit status decides the case.
TEST_F(BootTestCli, RunStepsDecideTheCaseByTheirExitStatus) {
  const std::string src = dir_.path() + "/src";
  std::filesystem::create_directories(src);
  std::ofstream(src + "/run-tests") << "echo 3 tests passed\n";
  const std::string cases = dir_.path() + "/cases.json";
  std::ofstream(cases) << R"([{"name": "good", "run": ["sh /mnt/src/run-tests", ["uname", "-m"]]},
                              {"name": "bad", "run": ["echo before", "echo broken >&2; exit 3",
                                                      "echo never"]}])";
  const auto r = BootTest({"--cases", cases, "--jobs", "2", "--share", src + ",tag=src", "--expect",
                           "KVMRUN-GUEST-HOLDING", "--junit", Junit()},
                          "kvmrun.hold");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("PASS good"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 command(s) passed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FAIL bad"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("step 2 'sh -c echo broken >&2; exit 3': exit 3"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("1 passed, 1 failed"), std::string::npos) << r.out;
  std::ifstream in(Junit());
  const std::string xml((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(xml.find("type=\"command failed\""), std::string::npos);
  EXPECT_NE(xml.find("--- run: sh -c sh /mnt/src/run-tests (exit 0) ---\n3 tests passed"),
            std::string::npos);
  EXPECT_NE(xml.find("broken"), std::string::npos);
  EXPECT_EQ(xml.find("--- run: sh -c echo never"), std::string::npos)
      << "a step ran after a failure";
  EXPECT_EQ(ValidateJunit().exit_code, 0);
}

// One case: its steps' output reaches the terminal (stdout and stderr), and every step's
// status and output the results directory's JSON.
TEST_F(BootTestCli, OneCasesStepsPrintTheirOutputAndReachTheResults) {
  const std::string results = dir_.path() + "/results";
  const auto r = BootTest({"--expect", "KVMRUN-GUEST-HOLDING", "--run", "echo out-of-step-1",
                           "--run", "echo err-of-step-2 >&2; exit 6", "--results", results},
                          "kvmrun.hold");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("--- step 1: sh -c echo out-of-step-1 (exit 0)\nout-of-step-1\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("--- step 2: sh -c echo err-of-step-2 >&2; exit 6 (exit 6)\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("err-of-step-2\n"), std::string::npos) << r.err;
  std::ifstream in(results + "/shard-1-of-1/results.json");
  const nlohmann::json report = nlohmann::json::parse(in);
  const nlohmann::json& steps = report["results"][0]["steps"];
  ASSERT_EQ(steps.size(), 2u) << report.dump(2);
  EXPECT_EQ(steps[0]["stdout"], "out-of-step-1\n");
  EXPECT_EQ(steps[1]["exit_code"], 6);
  EXPECT_EQ(steps[1]["stderr"], "err-of-step-2\n");
}

// Boot once, restore per case: the same verdicts as cold boots, each restored guest's clock set
// from behind, and a disk given to the cases written only through overlays.
TEST_F(BootTestCli, SnapshotAtGivesTheVerdictsOfColdBootsWithEachClockSet) {
  const std::string cases = dir_.path() + "/cases.json";
  std::ofstream(cases) << R"([{"name": "pass"},
                              {"name": "steps", "run": ["head -c 4 /dev/vda | grep -q '^KV'",
                                                        "printf XX | dd of=/dev/vda"]},
                              {"name": "failing", "run": ["exit 4"]},
                              {"name": "pattern", "expect": "KVMRUN-GUEST-HOLDING",
                               "fail": ["KVMRUN-GUEST-CLOCKSOURCE"]}])";
  const std::string disk = dir_.path() + "/disk.img";
  std::ofstream(disk) << "KVM" << std::string(4093, '\0');
  const auto verdicts = [&](const testing::CommandResult& r) {
    std::string out;
    for (const char* name : {"pass", "steps", "failing", "pattern"}) {
      const bool passed = r.out.find(std::string("PASS ") + name) != std::string::npos;
      const bool failed = r.out.find(std::string("FAIL ") + name) != std::string::npos;
      out += std::string(name) + (passed && !failed   ? "=pass "
                                  : failed && !passed ? "=fail "
                                                      : "=? ");
    }
    return out;
  };
  const std::vector<std::string> common = {
      "--cases", cases, "--jobs", "2", "--expect", "KVMRUN-GUEST-READY", "--disk", disk};
  const auto cold = BootTest(common, "kvmrun.hold");
  std::vector<std::string> warm_args = common;
  warm_args.insert(warm_args.end(), {"--snapshot-at", "KVMRUN-GUEST-HOLDING", "--console-log",
                                     dir_.path() + "/logs"});
  const auto warm = BootTest(warm_args, "kvmrun.hold");
  EXPECT_EQ(verdicts(cold), "pass=pass steps=pass failing=fail pattern=fail ") << cold.out;
  EXPECT_EQ(verdicts(warm), verdicts(cold)) << warm.out << warm.err;
  EXPECT_EQ(warm.exit_code, 1);
  EXPECT_NE(warm.out.find("saved at 'KVMRUN-GUEST-HOLDING'"), std::string::npos) << warm.out;
  std::ifstream log(dir_.path() + "/logs/steps.log");
  const std::string console((std::istreambuf_iterator<char>(log)), {});
  EXPECT_TRUE(std::regex_search(
      console, std::regex(R"(--- restored; guest clock offset -\d+\.\d+ s .* -> [-+]0\.0\d+ s)")))
      << console;
  std::ifstream in(disk, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(bytes.substr(0, 3), "KVM") << "a case wrote the disk itself";
  EXPECT_TRUE(testing::Leftovers(dir_.path()).empty());

  // A matrix whose axis changes the VM cannot share one saved VM: refused before any boot.
  const std::string matrix = dir_.path() + "/matrix.json";
  std::ofstream(matrix) << R"({"cases": [{"name": "m"}], "matrix": {"append": ["a", "b"]}})";
  const auto refused = BootTest({"--cases", matrix, "--expect", "x", "--snapshot-at", "y"});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("--snapshot-at: case 'm[append=b]' boots another VM than case "
                             "'m[append=a]' (append 'b', not 'a')"),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(refused.out.find("booted in"), std::string::npos) << refused.out;
}

TEST_F(BootTestCli, PassesOnTheTestGuestWithValidJunitAndTheConsoleLog) {
  const std::string log = dir_.path() + "/console.log";
  const auto r =
      BootTest({"--expect", "^KVMRUN-GUEST-READY$", "--junit", Junit(), "--console-log", log});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("timeout 60.0 s under KVM, x10 under TCG"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PASS boot ("), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tcg, timeout 600.0 s): matched '^KVMRUN-GUEST-READY$'"), std::string::npos);
  EXPECT_EQ(testing::Lines(r.out).back(), "1 passed, 0 failed");
  const auto valid = ValidateJunit();
  EXPECT_EQ(valid.exit_code, 0) << valid.err;
  std::ifstream xml(Junit());
  const std::string report((std::istreambuf_iterator<char>(xml)), std::istreambuf_iterator<char>());
  const auto system_out = report.find("<system-out><![CDATA[");
  ASSERT_NE(system_out, std::string::npos) << report;
  EXPECT_NE(report.find("KVMRUN-GUEST-READY", system_out), std::string::npos) << report;
  std::ifstream console(log);
  const std::string text((std::istreambuf_iterator<char>(console)),
                         std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("KVMRUN-GUEST-READY"), std::string::npos);
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path() + "/run"));
}

TEST_F(BootTestCli, AGuestPanicFailsWithThePanicLine) {
  const auto r = BootTest({"--expect", "NEVER-PRINTED", "--junit", Junit()}, "kvmrun.panic");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("FAIL boot"), std::string::npos);
  EXPECT_NE(r.out.find("guest kernel panic: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("last console lines:"), std::string::npos);
  EXPECT_EQ(ValidateJunit().exit_code, 0);
}

TEST_F(BootTestCli, AFailurePatternFailsFirst) {
  const auto r = BootTest({"--expect", "KVMRUN-GUEST-DATE", "--fail", "CLOCKSOURCE"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("failure pattern 'CLOCKSOURCE' matched: KVMRUN-GUEST-CLOCKSOURCE"),
            std::string::npos)
      << r.out;
}

TEST_F(BootTestCli, AWrongPatternFailsWhenTheGuestPowersOff) {
  const auto r = BootTest({"--expect", "NEVER-PRINTED"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("QEMU exited (exit code 0, guest-shutdown) before 'NEVER-PRINTED'"),
            std::string::npos)
      << r.out;
}

TEST_F(BootTestCli, TimesOutWithTheFactorApplied) {
  const auto start = std::chrono::steady_clock::now();
  const auto r = BootTest({"--expect", "NEVER-PRINTED", "--timeout", "0.5", "--tcg-factor", "2"},
                          "kvmrun.hold");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("'NEVER-PRINTED' did not appear within 1.0 s (TCG)"), std::string::npos)
      << r.out;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path() + "/run"));
}

TEST_F(BootTestCli, CasesFileRunsInParallelWithOneReport) {
  const std::string cases = dir_.path() + "/cases.json";
  std::ofstream(cases) << nlohmann::json::array(
      {{{"name", "ready"}, {"expect", "KVMRUN-GUEST-READY"}},
       {{"name", "clock"}, {"expect", "KVMRUN-GUEST-CLOCKSOURCE"}, {"os", "linux-legacy"}},
       {{"name", "broken"},
        {"expect", "NEVER"},
        {"append", "console=ttyS0 quiet panic=-1 kvmrun.panic"}}});
  const auto r = BootTest({"--cases", cases, "--jobs", "3", "--junit", Junit(), "--console-log",
                           dir_.path() + "/consoles"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("PASS ready"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PASS clock"), std::string::npos);
  EXPECT_NE(r.out.find("FAIL broken"), std::string::npos);
  EXPECT_EQ(testing::Lines(r.out).back(), "2 passed, 1 failed");
  EXPECT_EQ(ValidateJunit().exit_code, 0);
  for (const char* name : {"ready", "clock", "broken"}) {
    EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/consoles/" + name + ".log")) << name;
  }
}

// One process runs eight VMs at once through the library; afterwards nothing is left.
TEST_F(BootTestCli, EightGuestsInParallelLeaveNothingBehind) {
  const int fds_before = testing::OpenFdCount();
  BootTestOptions options;
  options.vm.runtime_base = dir_.path() + "/run";
  options.vm.cache_dir = dir_.path() + "/cache";
  std::vector<BootCase> cases;
  for (int i = 0; i < 8; ++i) {
    BootCase c;
    c.name = "guest-" + std::to_string(i);
    c.spec.qemu = qemu_;
    c.spec.accel = AccelRequest::kTcg;
    c.spec.memory_mib = 256;
    c.spec.kernel = testing::TestKernel();
    c.spec.initrd = testing::TestInitrd();
    c.spec.append = "console=ttyS0 quiet panic=-1";
    c.expect = "KVMRUN-GUEST-READY";
    c.timeout = 30s;  // x10 under TCG: two cores share eight guests
    cases.push_back(c);
  }
  const auto results = RunBootCases(cases, 8, options);
  for (const BootCaseResult& r : results) {
    EXPECT_TRUE(r.passed()) << r.name << ": " << r.message << "\n" << r.console;
  }
  EXPECT_EQ(testing::OpenFdCount(), fds_before);
  EXPECT_EQ(testing::ChildPids(), "");
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path() + "/run"));
}

}  // namespace
}  // namespace kvmrun

// `kvmrun run` booting the real test guest under TCG: lifecycle, exit paths, cleanup.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <thread>
#include <tuple>

#include "kvmrun/clock_policy.h"
#include "kvmrun/guest_os.h"
#include "tests/support/qemu_binary.h"
#include "tests/support/qemu_process.h"
#include "tests/support/run_command.h"
#include "tests/support/test_guest.h"
#include "tests/support/test_names.h"

namespace kvmrun {

void PrintTo(GuestOs os, std::ostream* out) { *out << ToString(os); }

namespace {

using namespace std::chrono_literals;
using testing::RunKvmrun;
using testing::RunTestGuestArgs;

// The test guest as `os` would keep its clock: a Windows policy's RTC runs in local time, and
// the guest is told the test's zone to read it in (a Linux guest would read it as UTC and be
// hours off, which the guest-clock gate rightly fails).
std::vector<std::string> GuestArgs(const std::string& os, const std::string& append = "") {
  std::string extra = append;
  if (MakeClockPolicy(ParseGuestOs(os)).rtc_base.value == RtcBase::kLocaltime) {
    extra +=
        std::string(extra.empty() ? "" : " ") + "kvmrun.rtc-local=" + testing::kTestTimeZonePosix;
  }
  return RunTestGuestArgs(os, extra);
}

std::string UniqueName() {
  std::random_device rd;
  return "kvmrun-test-" + std::to_string(rd());
}

// Each test runs kvmrun with its own cache and runtime directories, and (for RTC base checks)
// a time zone whose local time is not UTC.
class BootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    qemu_ = testing::TestQemuBinary();
    if (qemu_.empty()) GTEST_SKIP() << "qemu-system-x86_64 not installed";
    ASSERT_TRUE(std::filesystem::exists(testing::TestKernel()))
        << "no test guest: run scripts/make-test-guest (ctest's make_test_guest fixture does)";
    std::filesystem::create_directories(runtime_.path() + "/run");
  }
  testing::CommandOptions Options() const {
    testing::CommandOptions o;
    o.timeout = 120s;
    o.extra_env = Env();
    return o;
  }
  std::vector<std::string> Env() const {
    return {"XDG_RUNTIME_DIR=" + runtime_.path() + "/run", "XDG_CACHE_HOME=" + cache_.path(),
            std::string("TZ=") + testing::kTestTimeZone, "KVMRUN_QEMU=" + qemu_};
  }
  // Nothing in the runtime base but, at most, the named-VM registry with nothing in it.
  bool RuntimeEmpty() const {
    const std::string base = runtime_.path() + "/run";
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(base, ec)) {
      if (entry.path().filename() != "kvmrun" || !std::filesystem::is_empty(entry.path())) {
        return false;
      }
    }
    return true;
  }

  std::string qemu_;
  testing::TempDir runtime_;
  testing::TempDir cache_;
};

TEST_F(BootTest, BootsToTheMarkerVerifiesTheClocksAndPowersOff) {
  auto args = RunTestGuestArgs("linux");
  args.push_back("--verbose");
  const auto r = RunKvmrun(args, Options());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(testing::kGuestMarker), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("KVMRUN-GUEST-CLOCKSOURCE"), std::string::npos);
  EXPECT_NE(r.err.find("clock verification: ok"), std::string::npos) << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex("\nrtc-base +utc +utc +ok"))) << r.err;
  EXPECT_NE(r.err.find("guest powered off (guest-shutdown)"), std::string::npos) << r.err;
  EXPECT_TRUE(RuntimeEmpty());
}

// Without --verbose the verification is one line; --quiet leaves errors and the console only;
// an --append without console=ttyS0 gets a hint (the guest then prints nothing we could show).
TEST_F(BootTest, OneSummaryLineByDefaultNothingWithQuietAndAHintForASilentKernel) {
  const auto r = RunKvmrun(RunTestGuestArgs("linux"), Options());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(
      r.err,
      std::regex(
          R"(kvmrun: clock verification: ok \(\d+ ok[^)]*\d+ n/a\) \(--verbose: the table\))")))
      << r.err;
  EXPECT_EQ(r.err.find("TIMER"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("hint:"), std::string::npos) << r.err;

  auto quiet = RunTestGuestArgs("linux");
  quiet.push_back("--quiet");
  const auto q = RunKvmrun(quiet, Options());
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_EQ(q.err, "") << "nothing but the console (on stdout)";
  EXPECT_NE(q.out.find(testing::kGuestMarker), std::string::npos);

  auto silent = RunTestGuestArgs("linux");
  *(std::find(silent.begin(), silent.end(), "--append") + 1) = "quiet panic=-1";
  silent.insert(silent.end(), {"--timeout", "3", "--grace", "1"});
  const auto s = RunKvmrun(silent, Options());
  EXPECT_NE(s.err.find("kvmrun: hint: --append has no console=ttyS0"), std::string::npos) << s.err;
}

TEST_F(BootTest, JsonReportCarriesTheClockReportAndPhaseTimings) {
  auto args = GuestArgs("windows-10");
  args.push_back("--json");
  const auto r = RunKvmrun(args, Options());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto report = nlohmann::json::parse(r.out);
  EXPECT_TRUE(report["ok"].get<bool>());
  EXPECT_EQ(report["shutdown_reason"], "guest-shutdown");
  EXPECT_TRUE(report["clock_report"]["ok"].get<bool>());
  EXPECT_EQ(report["clock_report"]["checks"][1]["observed"], "localtime");
  for (const char* phase : {"probe_ms", "spawn_ms", "qmp_ready_ms", "verify_ms", "cont_ms"}) {
    EXPECT_GT(report["timings"][phase].get<double>(), 0.0) << phase;
  }
  EXPECT_NE(r.err.find(testing::kGuestMarker), std::string::npos) << "console on stderr";
}

// A Windows policy keeps the RTC in the host's local time (UTC+05:30 here): a guest that reads
// it as local time has the right clock; one that reads it as UTC is 5.5 hours ahead, and the
// guest-clock gate stops the run (exit 3) naming the UTC offset as the cause.
TEST_F(BootTest, ALocalTimeRtcIsRightOnlyForAGuestThatReadsItAsLocalTime) {
  {
    std::vector<std::string> argv = {KVMRUN_CLI_PATH};
    const auto args = GuestArgs("windows-10", "kvmrun.hold");
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--grace", "1"});
    testing::ScopedProcess kvmrun(argv, Env(), runtime_.path() + "/kvmrun.log");
    for (int i = 0; i < 1200 && kvmrun.Output().find("kvmrun: guest-time") == std::string::npos;
         ++i) {
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_TRUE(std::regex_search(kvmrun.Output(),
                                  std::regex(R"(guest-time [+-][01]\.\d+ s \+- [^:]+: ok)")))
        << kvmrun.Output();
    kvmrun.Signal(SIGTERM);
    ASSERT_TRUE(kvmrun.WaitExit(15s).has_value()) << kvmrun.Output();
  }
  auto args = RunTestGuestArgs("windows-10", "kvmrun.hold");
  args.insert(args.end(), {"--grace", "1"});
  const auto r = RunKvmrun(args, Options());
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex(R"(guest-time \+19[78]\d\d\.\d+ s .*MISMATCH)")))
      << r.err;
  EXPECT_NE(r.err.find("off by the host's UTC offset (UTC+05:30)"), std::string::npos) << r.err;
  EXPECT_TRUE(RuntimeEmpty());
}

TEST_F(BootTest, SecondRunReusesTheProbeCache) {
  ASSERT_EQ(RunKvmrun({"doctor", "--json"}, Options()).exit_code, 0);
  const auto r = RunKvmrun({"doctor", "--json"}, Options());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doctor = nlohmann::json::parse(r.out);
  EXPECT_TRUE(doctor["probe"]["cached"].get<bool>());
  EXPECT_EQ(doctor["cache_file"].get<std::string>().rfind(cache_.path() + "/kvmrun/", 0), 0u);
  // Which kvmrun answered, as --version says it.
  const auto version = RunKvmrun({"--version"});
  EXPECT_EQ(doctor["kvmrun"]["build"].get<std::string>() + "\n", version.out);
  const auto text = RunKvmrun({"doctor"}, Options());
  EXPECT_EQ(text.out.rfind("kvmrun      " + version.out.substr(7), 0), 0u) << text.out;
}

TEST_F(BootTest, KillNineOfKvmrunMidBootLeavesNoQemu) {
  const std::string name = UniqueName();
  std::vector<std::string> argv = {KVMRUN_CLI_PATH};
  auto args = RunTestGuestArgs("linux", "kvmrun.hold");
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--name", name});
  testing::ScopedProcess kvmrun(argv, Env(), runtime_.path() + "/kvmrun.log");
  std::vector<pid_t> qemus;
  for (int i = 0; i < 400 && qemus.empty(); ++i) {
    std::this_thread::sleep_for(25ms);
    qemus = testing::QemusOfVm(name);
  }
  ASSERT_EQ(qemus.size(), 1u) << kvmrun.Output();
  kvmrun.Signal(SIGKILL);
  ASSERT_TRUE(kvmrun.WaitExit(5s).has_value());
  std::this_thread::sleep_for(2s);
  EXPECT_FALSE(testing::ProcessExists(qemus[0])) << "QEMU survived kill -9 of kvmrun";
}

TEST_F(BootTest, SigtermShutsTheVmDownThroughTheLadderInBoundedTime) {
  const std::string name = UniqueName();
  std::vector<std::string> argv = {KVMRUN_CLI_PATH};
  auto args = RunTestGuestArgs("linux", "kvmrun.hold");
  argv.insert(argv.end(), args.begin(), args.end());
  // No agent port: this guest ignores the power button and has nothing else to be asked by.
  argv.insert(argv.end(), {"--name", name, "--grace", "1", "--no-agent"});
  testing::ScopedProcess kvmrun(argv, Env(), runtime_.path() + "/kvmrun.log");
  for (int i = 0; i < 1200 && kvmrun.Output().find("KVMRUN-GUEST-HOLDING") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_NE(kvmrun.Output().find("KVMRUN-GUEST-HOLDING"), std::string::npos) << kvmrun.Output();
  const auto start = std::chrono::steady_clock::now();
  kvmrun.Signal(SIGTERM);
  const auto status = kvmrun.WaitExit(15s);
  ASSERT_TRUE(status.has_value()) << kvmrun.Output();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(*status, 5) << "the busybox guest has no ACPI power button handler, and no agent";
  EXPECT_NE(kvmrun.Output().find("kvmrun: SIGTERM: asking the guest to power off (up to 1.00 s), "
                                 "then quitting QEMU; a second Ctrl-C forces it"),
            std::string::npos)
      << kvmrun.Output();
  EXPECT_NE(kvmrun.Output().find("VM stopped: SIGTERM: the guest did not power off, QEMU was "
                                 "stopped (stopped by quit)"),
            std::string::npos)
      << kvmrun.Output();
  EXPECT_TRUE(testing::QemusOfVm(name).empty());
  EXPECT_TRUE(RuntimeEmpty());
}

// --dry-run prints a command a person can paste into a shell: it boots the guest without
// kvmrun (console on the terminal), and --accel kvm plans on a host without KVM too.
TEST_F(BootTest, DryRunPrintsACommandThatRunsWhenPasted) {
  auto args = RunTestGuestArgs("linux");
  args.push_back("--dry-run");
  const auto plan = RunKvmrun(args, Options());
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.err.find("a command to run without kvmrun"), std::string::npos) << plan.err;
  auto options = Options();
  options.timeout = 120s;
  const auto pasted = testing::RunCommand({"/bin/bash", "-c", plan.out}, options);
  EXPECT_EQ(pasted.exit_code, 0) << plan.out << pasted.err;
  EXPECT_NE(pasted.out.find(testing::kGuestMarker), std::string::npos) << pasted.out;

  auto kvm = args;
  *(std::find(kvm.begin(), kvm.end(), "--accel") + 1) = "kvm";
  const auto planned = RunKvmrun(kvm, Options());
  EXPECT_EQ(planned.exit_code, 0) << planned.err;
  EXPECT_NE(planned.out.find("-accel kvm"), std::string::npos) << planned.out;
}

TEST_F(BootTest, ADiskQemuCannotOpenExitsOneWithQemusMessage) {
  const std::string disk = runtime_.path() + "/broken.qcow2";
  std::ofstream(disk) << std::string("QFI\xfb\0\0\0\x63", 8) << std::string(504, '\0');
  auto args = RunTestGuestArgs("linux");
  args.insert(args.end(), {"--disk", disk});
  const auto r = RunKvmrun(args, Options());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("QEMU exited (exit code 1): qemu-system-x86_64: -drive file.driver=file,"
                       "file.filename=" +
                       disk),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("  command: "), std::string::npos);
  EXPECT_TRUE(RuntimeEmpty());
}

TEST_F(BootTest, AnExtraArgThatBreaksThePolicyExitsThreeAndLeavesNoQemu) {
  const std::string name = UniqueName();
  auto args = RunTestGuestArgs("linux");
  args.insert(args.end(), {"--name", name, "--extra-arg=-rtc", "--extra-arg=base=localtime"});
  const auto r = RunKvmrun(args, Options());
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("clock verification failed: rtc-base expected utc, observed localtime"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.find(testing::kGuestMarker), std::string::npos) << "the guest never ran";
  EXPECT_TRUE(testing::QemusOfVm(name).empty());
  EXPECT_TRUE(RuntimeEmpty());
}

TEST_F(BootTest, VerifyWarnReportsTheMismatchAndBootsAnyway) {
  auto args = RunTestGuestArgs("linux");
  args.insert(args.end(), {"--verify", "warn", "--extra-arg=-machine", "--extra-arg=hpet=on"});
  const auto r = RunKvmrun(args, Options());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex("\nhpet +off +on +MISMATCH"))) << r.err;
  EXPECT_NE(r.err.find("continuing because verification is set to warn"), std::string::npos);
  EXPECT_NE(r.out.find(testing::kGuestMarker), std::string::npos);
}

TEST_F(BootTest, KvmPathWhenTheFunctionalCheckPasses) {
  const auto doctor = RunKvmrun({"doctor", "--json"}, Options());
  ASSERT_EQ(doctor.exit_code, 0) << doctor.err;
  const auto d = nlohmann::json::parse(doctor.out);
  if (!d["kvm"]["usable"].get<bool>()) {
    GTEST_SKIP() << "KVM not usable here: " << d["kvm"]["summary"].get<std::string>();
  }
  auto args = RunTestGuestArgs("linux");
  args[4] = "kvm";  // --accel kvm
  const auto r = RunKvmrun(args, Options());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex("\naccelerator +kvm +kvm +ok"))) << r.err;
}

// Both QEMU generations boot the test guest with a verified report, Linux and Windows policy.
class EachQemuBootTest : public BootTest,
                         public ::testing::WithParamInterface<std::tuple<std::string, GuestOs>> {};

TEST_P(EachQemuBootTest, BootsWithAVerifiedReport) {
  const auto& [label, os] = GetParam();
  KVMRUN_REQUIRE_QEMU_LABELLED(qemu, label);
  auto args = GuestArgs(std::string(ToString(os)));
  args.insert(args.end(), {"--qemu", qemu, "--json"});
  const auto r = RunKvmrun(args, Options());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto report = nlohmann::json::parse(r.out);
  EXPECT_TRUE(report["clock_report"]["ok"].get<bool>()) << report["clock_report"].dump(2);
  for (const auto& check : report["clock_report"]["checks"]) {
    EXPECT_NE(check["result"], "unknown") << check.dump();
  }
  EXPECT_EQ(report["qemu"], qemu);
  EXPECT_EQ(report["shutdown_reason"], "guest-shutdown");
  EXPECT_NE(r.err.find(testing::kGuestMarker), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Generations, EachQemuBootTest,
                         ::testing::Combine(::testing::ValuesIn(testing::QemuLabels()),
                                            ::testing::Values(GuestOs::kLinux,
                                                              GuestOs::kWindows11)),
                         testing::LabelAndOsName());

// Every catalog OS: the policy verifies ok in a real QEMU and the guest boots.
class EveryOsBootTest : public BootTest, public ::testing::WithParamInterface<GuestOs> {};

TEST_P(EveryOsBootTest, VerifiesOkAndBoots) {
  const auto r = RunKvmrun(GuestArgs(std::string(ToString(GetParam()))), Options());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("clock verification: ok"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find(testing::kGuestMarker), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Catalog, EveryOsBootTest, ::testing::ValuesIn(testing::AllGuestOs()),
                         testing::OsName());

}  // namespace
}  // namespace kvmrun

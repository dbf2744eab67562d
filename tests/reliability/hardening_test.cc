// A hostile guest, hostile file names and hostile peers must get nothing. One test per class of
// attack or fault found in the adversarial review (docs/security.md has the threat model); each
// asserts the safe outcome and that nothing is left behind: no process, no runtime directory,
// no socket, no file outside its place. Real QEMU (the busybox test guest under TCG) where the
// item is about QEMU, a fake QMP server where it is about a peer.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "kvmrun/error.h"
#include "kvmrun/qmp_client.h"
#include "kvmrun/qmp_commands.h"
#include "kvmrun/vm.h"
#include "tests/support/fake_qmp_server.h"
#include "tests/support/qemu_binary.h"
#include "tests/support/qemu_process.h"
#include "tests/support/run_command.h"
#include "tests/support/scratch.h"
#include "tests/support/test_guest.h"

namespace kvmrun {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::CommandResult;

std::string Unique(const std::string& what) {
  return "kvmrun-hard-" + what + "-" + std::to_string(std::random_device{}() % 1000000);
}

// The process's peak resident memory, in KiB (VmHWM).
long PeakRssKib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

class HardeningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    qemu_ = testing::TestQemuBinary();
    if (qemu_.empty()) GTEST_SKIP() << "qemu-system-x86_64 not installed";
    ASSERT_TRUE(fs::exists(testing::TestKernel())) << "run scripts/make-test-guest";
  }
  void TearDown() override {
    if (IsSkipped()) return;
    const auto left = testing::Leftovers(scratch_.Path(""));
    EXPECT_TRUE(left.empty()) << "left behind: " << left.front();
    EXPECT_EQ(testing::ChildPids(), "");
  }

  std::vector<std::string> Env() const {
    std::vector<std::string> env = scratch_.Env();
    env.push_back("KVMRUN_QEMU=" + qemu_);
    return env;
  }
  testing::CommandOptions Options(std::chrono::seconds timeout = 120s) const {
    testing::CommandOptions o;
    o.extra_env = Env();
    o.timeout = timeout;
    return o;
  }
  // `kvmrun run` of the test guest, with `append` on its kernel command line.
  std::vector<std::string> Guest(const std::string& append = "") const {
    return testing::RunTestGuestArgs("linux", append);
  }
  std::vector<std::string> KvmrunGuest(const std::string& append,
                                       std::vector<std::string> extra = {}) const {
    std::vector<std::string> argv = {KVMRUN_CLI_PATH};
    const auto args = Guest(append);
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
  VmOptions LibraryOptions() const {
    VmOptions o;
    o.runtime_base = scratch_.Run();
    o.cache_dir = scratch_.Cache();
    return o;
  }
  VmSpec GuestSpec(const std::string& append = "") const {
    VmSpec spec;
    spec.qemu = qemu_;
    spec.accel = AccelRequest::kTcg;
    spec.kernel = testing::TestKernel();
    spec.initrd = testing::TestInitrd();
    spec.append = "console=ttyS0 quiet panic=-1 " + append;
    spec.no_reboot = true;
    return spec;
  }
  // A QEMU stand-in: answers kvmrun's probe as the real QEMU does, and runs `body` (sh) for
  // the VM itself, with $QEMU set to the real binary.
  std::string WrapperQemu(const std::string& name, const std::string& body) const {
    return scratch_.File(name,
                         "#!/bin/sh\nQEMU=" + qemu_ +
                             "\ncase \" $* \" in *' -help '*|*' -machine none '*) exec $QEMU "
                             "\"$@\";; esac\n" +
                             body + "\n",
                         0755);
  }
  // Runs kvmrun in the background until its output contains `text`.
  static bool WaitForOutput(testing::ScopedProcess& p, const std::string& text,
                            std::chrono::seconds limit = 120s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (p.Output().find(text) != std::string::npos) return true;
      if (p.WaitExit(0ms)) return p.Output().find(text) != std::string::npos;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  std::string qemu_;
  testing::Scratch scratch_;
};

// 1. With stdin and stdout closed, the signalfd took fd 0 and the QMP socket fd 1, so the guest's
// console went into the QMP monitor: a guest printing a migrate command ran a host command.
TEST_F(HardeningTest, ClosedStandardDescriptorsNeverConnectTheGuestToQmp) {
  const std::string cwd = scratch_.Dir("cwd");
  for (const std::string closing : {"<&- >&-", ">&-", "<&- >&- 2>&-"}) {
    SCOPED_TRACE(closing);
    std::vector<std::string> argv = {"/bin/sh", "-c",
                                     "cd \"$1\" && shift && exec \"$@\" " + closing, "sh", cwd};
    const auto guest = KvmrunGuest("kvmrun.qmp-inject");
    argv.insert(argv.end(), guest.begin(), guest.end());
    const CommandResult r = testing::RunCommand(argv, Options());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_FALSE(fs::exists(cwd + "/kvmrun-owned")) << "the guest ran a command on the host";
  }
}

// 2. A raw disk whose first bytes a guest made a qcow2 header, with a host file as its backing
// file, is opened as raw: the guest cannot read that file through its disk.
TEST_F(HardeningTest, AWritableImageIsNeverOpenedInAFormatItsContentClaims) {
  const std::string secret = scratch_.File("secret.txt", std::string(65536, 'S'));
  const std::string evil = scratch_.Path("guest-disk.img");
  const CommandResult made = testing::RunCommand(
      {"qemu-img", "create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", evil, "1M"});
  ASSERT_EQ(made.exit_code, 0) << made.err << " (qemu-img is in the qemu-utils package)";
  std::vector<std::string> notices;
  VmOptions options = LibraryOptions();
  options.on_notice = [&](std::string_view n) { notices.emplace_back(n); };
  VmSpec spec = GuestSpec();
  spec.disks = {ParseDiskArgument(evil, false, false)};
  auto vm = Vm::Start(spec, options);
  const nlohmann::json block = vm->qmp().Execute("query-block");
  ASSERT_EQ(block.size(), 1u) << block.dump();
  const nlohmann::json& inserted = block[0].at("inserted");
  EXPECT_EQ(inserted.at("drv"), "raw") << inserted.dump();
  EXPECT_FALSE(inserted.contains("backing_file")) << inserted.dump();
  EXPECT_EQ(inserted.at("file"), evil);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_NE(notices[0].find("starts with a qcow2 header but is opened as raw"), std::string::npos);
  vm->Shutdown(0ms);
}

// 3. File names with a ':' before the first '/' were read by QEMU as protocols: "json:{...}"
// attached something else, "vm-12:00.img" did not open at all.
TEST_F(HardeningTest, FileNamesAreNeverProtocols) {
  const std::string cwd = scratch_.Dir("names");
  const std::string json_name = "json:{\"driver\":\"null-co\"}";
  scratch_.File("names/" + json_name, std::string(1 << 20, '\0'));
  scratch_.File("names/vm-12:00.img", std::string(1 << 20, '\0'));
  const fs::path previous = fs::current_path();
  fs::current_path(cwd);  // relative names, as a user types them
  VmSpec spec = GuestSpec();
  spec.disks = {ParseDiskArgument(json_name, true, false),
                ParseDiskArgument("vm-12:00.img", false, false)};
  std::unique_ptr<Vm> vm;
  try {
    vm = Vm::Start(spec, LibraryOptions());
  } catch (...) {
    fs::current_path(previous);
    throw;
  }
  fs::current_path(previous);
  const nlohmann::json block = vm->qmp().Execute("query-block");
  ASSERT_EQ(block.size(), 2u) << block.dump();
  EXPECT_EQ(block[0].at("inserted").at("file"), cwd + "/" + json_name) << block.dump();
  EXPECT_EQ(block[1].at("inserted").at("file"), cwd + "/vm-12:00.img") << block.dump();
  vm->Shutdown(0ms);
}

// 4. A name is one value: "db=primary,process=evil" must not rename QEMU's process or set any
// other -name option.
TEST_F(HardeningTest, TheVmNameNeverBecomesQemuOptions) {
  VmSpec spec = GuestSpec();
  spec.name = "db=primary,process=evil,debug-threads=on";
  auto vm = Vm::Start(spec, LibraryOptions());
  EXPECT_EQ(vm->qmp().Execute("query-name").value("name", ""), spec.name);
  std::ifstream comm("/proc/" + std::to_string(vm->pid()) + "/comm");
  std::string process_name;
  std::getline(comm, process_name);
  EXPECT_NE(process_name, "evil");
  vm->Shutdown(0ms);
}

// 5. --timeout never fired in `run` (a blocking read on the signal descriptor).
TEST_F(HardeningTest, TimeoutFiresWhileTheGuestRuns) {
  for (const std::string timeout : {"2", "0.0001"}) {
    SCOPED_TRACE(timeout);
    auto args = Guest("kvmrun.hold");
    args.insert(args.end(), {"--timeout", timeout, "--grace", "1"});
    const auto start = std::chrono::steady_clock::now();
    const CommandResult r = testing::RunKvmrun(args, Options(60s));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 6) << r.err;
    EXPECT_NE(r.err.find("kvmrun: timeout: asking the guest to power off"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find(
                  "VM stopped: timeout: the guest did not power off, QEMU was stopped (stopped by"),
              std::string::npos)
        << r.err;
    EXPECT_LT(seconds, 40) << "the timeout did not end the run";
  }
}

// 6 and 15. Nesting from a QMP peer, from the user's arguments or a cases file is refused with
// a clear error instead of overflowing the stack; an error reply without an id (QEMU's answer
// to input it cannot parse) is reported as that error, not as a timeout.
TEST_F(HardeningTest, DeeplyNestedJsonAndIdlessErrorsFromPeers) {
  using B = testing::FakeServerBehaviour;
  const std::string socket = scratch_.Path("fake.sock");
  struct Case {
    B behaviour;
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::string nested(100000, '[');
  const std::vector<Case> cases = {
      {B::kNestedGreeting,
       {"qmp", "--qmp-socket", socket, "query-status"},
       1,
       "nested deeper than 128 levels"},
      {B::kNestedReply,
       {"qmp", "--qmp-socket", socket, "query-status"},
       1,
       "nested deeper than 128 levels"},
      {B::kNestedReply,
       {"verify", "--qmp-socket", socket, "--os", "linux"},
       1,
       "nested deeper than 128 levels"},
      {B::kIdlessError,
       {"qmp", "--qmp-socket", socket, "query-status", "--timeout", "30"},
       1,
       "'query-status' failed: GenericError: JSON parse error, nesting too deep"},
      {B::kNeverAnswers,
       {"qmp", "--qmp-socket", socket, "qom-get", nested},
       2,
       "is not a JSON object (JSON nested deeper than 128 levels)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args[0] + " " + c.args.back().substr(0, 20));
    testing::FakeQmpServer server(socket, c.behaviour);
    const auto start = std::chrono::steady_clock::now();
    const CommandResult r = testing::RunKvmrun(c.args, Options(60s));
    EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err.substr(0, 500);
    EXPECT_EQ(testing::Lines(r.err).size(), 1u) << r.err.substr(0, 500);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);
  }
  const std::string cases_file = scratch_.File("deep.json", nested);
  const CommandResult r = testing::RunKvmrun({"boot-test", "--cases", cases_file}, Options());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("JSON nested deeper than 128 levels"), std::string::npos) << r.err;

  // The real QEMU's answer to over-deep input carries no id.
  testing::ScopedQemu qemu(qemu_, {});
  QmpClient client(ConnectQmpSocket(qemu.socket_path(), 5s));
  nlohmann::json deep = nlohmann::json::array();
  for (int i = 0; i < 2000; ++i) deep = nlohmann::json::array({deep});
  try {
    client.Execute("query-status", {{"deep", deep}}, 20s);
    ADD_FAILURE() << "QEMU accepted 2000 levels";
  } catch (const QmpError& e) {
    EXPECT_EQ(e.error_class(), "GenericError") << e.what();
  }
  EXPECT_EQ(QueryStatus(client).status, "prelaunch");
}

// 7. A pattern that makes a backtracking engine run for hours, against a guest line built for
// it, while the case's own pattern matches that same line.
TEST_F(HardeningTest, ConsolePatternsRunInLinearTime) {
  const std::vector<std::string> args = {"boot-test",
                                         "--kernel",
                                         testing::TestKernel(),
                                         "--initrd",
                                         testing::TestInitrd(),
                                         "--append",
                                         "console=ttyS0 quiet panic=-1 kvmrun.a-line",
                                         "--accel",
                                         "tcg",
                                         "--fail",
                                         "(a+)+#",
                                         "--fail",
                                         "^(a|aa)+b",
                                         "--expect",
                                         "^(a|aa)+$",
                                         "--timeout",
                                         "30"};
  const CommandResult r = testing::RunKvmrun(args, Options(300s));
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("PASS boot"), std::string::npos) << r.out;
}

// 8. SIGINT/SIGTERM work in every phase: waiting for a FIFO console log's reader, waiting for a
// QEMU that hangs before QMP, and a second one cuts the ladder short.
TEST_F(HardeningTest, SignalsEndEveryPhase) {
  const std::string fifo = scratch_.Path("console.fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  {
    const std::string name = Unique("fifo");
    testing::ScopedProcess kvmrun(KvmrunGuest("", {"--console-log", fifo, "--name", name}), Env(),
                                  scratch_.Path("fifo.log"));
    ASSERT_TRUE(WaitForOutput(kvmrun, "is a FIFO with no reader; waiting for one"))
        << kvmrun.Output();
    kvmrun.Signal(SIGTERM);
    EXPECT_EQ(kvmrun.WaitExit(20s), 1) << kvmrun.Output();
    EXPECT_NE(kvmrun.Output().find("interrupted by SIGTERM"), std::string::npos) << kvmrun.Output();
    EXPECT_TRUE(testing::QemusOfVm(name).empty());
  }
  {
    const std::string hang = WrapperQemu("hanging-qemu", "exec sleep 987651");
    testing::ScopedProcess kvmrun(
        {KVMRUN_CLI_PATH, "run", "--os", "linux", "--accel", "tcg", "--qemu", hang}, Env(),
        scratch_.Path("hang.log"));
    std::this_thread::sleep_for(1500ms);  // past the probe, waiting for the greeting
    kvmrun.Signal(SIGINT);
    EXPECT_EQ(kvmrun.WaitExit(30s), 1) << kvmrun.Output();
    EXPECT_NE(kvmrun.Output().find("interrupted by SIGINT"), std::string::npos) << kvmrun.Output();
    EXPECT_TRUE(testing::ProcessesWithArgument("987651").empty()) << "the hung QEMU survived";
  }
  {
    auto argv = KvmrunGuest("kvmrun.hold", {"--grace", "120"});
    testing::ScopedProcess kvmrun(argv, Env(), scratch_.Path("ladder.log"));
    ASSERT_TRUE(WaitForOutput(kvmrun, "KVMRUN-GUEST-HOLDING")) << kvmrun.Output();
    const auto start = std::chrono::steady_clock::now();
    kvmrun.Signal(SIGTERM);
    ASSERT_TRUE(WaitForOutput(kvmrun, "asking the guest to power off (up to 120.0 s)"));
    std::this_thread::sleep_for(300ms);
    kvmrun.Signal(SIGTERM);
    EXPECT_EQ(kvmrun.WaitExit(30s), 5) << kvmrun.Output();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 30s) << "the grace of 120 s ran out";
    EXPECT_NE(kvmrun.Output().find("(stopped by SIGKILL)"), std::string::npos) << kvmrun.Output();
  }
}

// 9-12 and 15 through the CLI: refused before anything starts, or failing loudly.
TEST_F(HardeningTest, RefusedInputsAndLoudFailures) {
  const std::string precious = scratch_.File("precious.txt", "keep me");
  struct Case {
    std::string name;
    std::vector<std::string> extra;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"public socket on a regular file",
       {"--qmp-socket", precious},
       2,
       "exists and is not a socket; QEMU would delete it"},
      {"-daemonize", {"--extra-arg=-daemonize"}, 2, "would detach QEMU from kvmrun"},
      {"--daemonize", {"--extra-arg=--daemonize"}, 2, "would detach QEMU from kvmrun"},
      {"machine with options", {"--machine", "pc,accel=kvm"}, 2, "--machine: invalid value"},
      {"unknown machine", {"--machine", "nosuch"}, 2, "--machine: unknown machine type 'nosuch'"},
      {"cpu with features", {"--cpu", "max,-sse2"}, 2, "--cpu: invalid value 'max,-sse2'"},
      {"more CPUs than the machine takes",
       {"--cpus", "300"},
       2,
       "--cpus: invalid value '300'; valid: 1 to 255 for machine type pc-i440fx"},
      {"disk with an unknown option",
       {"--disk", precious + ",cache=none"},
       2,
       "unknown option 'cache=none'"},
      {"console log that fills up",
       {"--console-log", "/dev/full"},
       1,
       "writing the console log '/dev/full' failed after 0 bytes: No space left on device"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto args = Guest();
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    const CommandResult r = testing::RunKvmrun(args, Options());
    EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
  std::ifstream kept(precious);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(kept), {}), "keep me");
  const CommandResult count =
      testing::RunKvmrun({"qmp", "--qmp-socket", "/nowhere", "--events", "--count=-1"}, Options());
  EXPECT_EQ(count.exit_code, 2);
  EXPECT_NE(count.err.find("--count: invalid value '-1'"), std::string::npos) << count.err;
}

// 11. `kvmrun run | head -c 1`: the reader goes away; kvmrun stops the VM through the ladder
// and exits 1, instead of dying of SIGPIPE with its runtime directory left.
TEST_F(HardeningTest, AReaderThatGoesAwayStopsTheVmCleanly) {
  std::string command =
      "set -o pipefail; \"$@\" | head -c 1 >/dev/null; echo \"rc=${PIPESTATUS[0]}\"";
  std::vector<std::string> argv = {"/bin/bash",     "-c",
                                   command,         "bash",
                                   KVMRUN_CLI_PATH, "run",
                                   "--os",          "linux",
                                   "--accel",       "tcg",
                                   "--kernel",      testing::TestKernel(),
                                   "--initrd",      testing::TestInitrd(),
                                   "--append",      "console=ttyS0 panic=-1 kvmrun.hold",
                                   "--grace",       "1"};
  const CommandResult r = testing::RunCommand(argv, Options());
  EXPECT_NE(r.out.find("rc=1"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.err.find("the console output failed (Broken pipe): asking the guest to power off"),
            std::string::npos)
      << r.err;
}

// 12. A QEMU wrapper's other children die with the VM (its process group is killed).
TEST_F(HardeningTest, AWrappersOtherChildrenDieWithTheVm) {
  const std::string wrapper = WrapperQemu("forking-qemu", "sleep 987652 &\nexec $QEMU \"$@\"");
  auto args = Guest();
  args.insert(args.end(), {"--qemu", wrapper});
  const CommandResult r = testing::RunKvmrun(args, Options());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(testing::ProcessesWithArgument("987652").empty()) << "an orphan survived";
}

// 13. QEMU's stderr without newlines is kept as a bounded tail, not buffered without limit.
TEST_F(HardeningTest, StderrFloodIsBounded) {
  const std::string flood = WrapperQemu(
      "flooding-qemu", "head -c 200000000 /dev/zero | tr '\\0' x >&2\nexec $QEMU \"$@\"");
  VmSpec spec = GuestSpec();
  spec.qemu = flood;
  VmOptions options = LibraryOptions();
  options.qmp_timeout = 60s;
  const long before = PeakRssKib();
  auto vm = Vm::Start(spec, options);
  EXPECT_LE(vm->StderrTail().size(), 16u * 1024);
  EXPECT_EQ(vm->StderrTail().substr(0, 1000), std::string(1000, 'x')) << "no flood happened";
  EXPECT_LT(PeakRssKib() - before, 64 * 1024) << "KiB of peak memory grew by 200 MB of stderr";
  vm->Shutdown(0ms);
}

// 14. Case names become file names: they stay inside the log directory, never collide, and
// empty or duplicate names are refused before anything runs.
TEST_F(HardeningTest, CaseNamesStayInsideTheLogDirectory) {
  const std::string logs = scratch_.Path("logs");
  const std::string cases = scratch_.File(
      "cases.json", R"([{"name": "../../escape"}, {"name": "sub/dir"}, {"name": "sub_dir"}])");
  const std::vector<std::string> args = {"boot-test",
                                         "--cases",
                                         cases,
                                         "--kernel",
                                         testing::TestKernel(),
                                         "--initrd",
                                         testing::TestInitrd(),
                                         "--append",
                                         "console=ttyS0 quiet panic=-1",
                                         "--accel",
                                         "tcg",
                                         "--expect",
                                         "KVMRUN-GUEST-READY",
                                         "--jobs",
                                         "2",
                                         "--console-log",
                                         logs};
  const CommandResult r = testing::RunKvmrun(args, Options(400s));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  std::set<std::string> written;
  for (const auto& entry : fs::recursive_directory_iterator(logs)) {
    ASSERT_TRUE(entry.is_regular_file()) << entry.path();
    EXPECT_GT(entry.file_size(), 0u) << entry.path();
    written.insert(entry.path().filename().string());
  }
  EXPECT_EQ(written.size(), 3u);
  EXPECT_TRUE(written.count("sub_dir.log"));
  EXPECT_FALSE(fs::exists(scratch_.Path("escape.log")));
  EXPECT_FALSE(fs::exists(fs::path(scratch_.Path("")).parent_path() / "escape.log"));

  for (const auto& [json, message] : std::vector<std::pair<std::string, std::string>>{
           {R"([{"name": ""}])", "case 1: name: must not be empty"},
           {R"([{"name": "a"}, {"name": "a"}])", "case 2: name: 'a' is used by an earlier case"}}) {
    const CommandResult bad =
        testing::RunKvmrun({"boot-test", "--cases", scratch_.File("bad.json", json), "--kernel",
                            testing::TestKernel(), "--expect", "x"},
                           Options());
    EXPECT_EQ(bad.exit_code, 2) << bad.err;
    EXPECT_NE(bad.err.find(message), std::string::npos) << bad.err;
  }
}

// ---- The second pass (docs/security.md, "Inputs and their rules"): one test per class, through
// the CLI, each with its hostile input and a check that nothing outside its place changed.

// A state directory someone else can write or owns, with a planted link where kvmrun writes the
// firmware variables: refused before QEMU starts, the link's target untouched.
TEST_F(HardeningTest, AStateDirectoryOthersControlIsRefused) {
  const std::string victim = scratch_.File("victim", "precious", 0644);
  const std::string shared = scratch_.Dir("shared-state");
  chmod(shared.c_str(), 0777);
  fs::create_symlink(victim, shared + "/uefi-vars.fd.partial");
  fs::create_symlink(victim, shared + "/uefi-vars.fd");
  std::vector<std::string> dirs = {shared};
  if (geteuid() == 0) {
    const std::string theirs = scratch_.Dir("their-state");
    fs::create_symlink(victim, theirs + "/uefi-vars.fd.partial");
    ASSERT_EQ(chown(theirs.c_str(), 65534, 65534), 0);
    dirs.push_back(theirs);
  }
  for (const std::string& dir : dirs) {
    SCOPED_TRACE(dir);
    auto args = Guest();
    args.insert(args.end(), {"--firmware", "uefi", "--state-dir", dir});
    const CommandResult r = testing::RunKvmrun(args, Options());
    if (r.err.find("no UEFI firmware") != std::string::npos) GTEST_SKIP() << "no OVMF here";
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(dir), std::string::npos) << r.err;
    EXPECT_TRUE(r.err.find("can be written by others") != std::string::npos ||
                r.err.find("belongs to uid 65534") != std::string::npos)
        << r.err;
  }
  std::ifstream in(victim);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "precious");
  struct stat st {};
  ASSERT_EQ(stat(victim.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

// Files a user or another machine names are checked to be regular before anything blocks on
// them: a FIFO is refused at once (it used to hang `run --restore` with signals masked).
TEST_F(HardeningTest, FifosAreRefusedNotWaitedOn) {
  const std::string fifo = scratch_.Path("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto restore = Guest();
  restore.insert(restore.end(), {"--restore", fifo});
  for (const auto& args : std::vector<std::vector<std::string>>{
           restore, {"snapshot", "show", fifo}, {"run", "--vm-file", fifo, "--dry-run"}}) {
    SCOPED_TRACE(args[0] + " " + args[1]);
    const auto start = std::chrono::steady_clock::now();
    const CommandResult r = testing::RunKvmrun(args, Options(30s));
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("is a FIFO, not a regular file"), std::string::npos) << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);
  }
}

// What a file says is shown escaped: a snapshot header whose saved_at is an escape sequence.
TEST_F(HardeningTest, TextFromFilesReachesTheTerminalEscaped) {
  nlohmann::json header = {{"format", 1},
                           {"identity",
                            {{"qemu", "/q\x1b[2J"},
                             {"qemu_version", "7.2.0"},
                             {"accel", "tcg"},
                             {"os", "linux"},
                             {"argv", {"-m", "512"}},
                             {"disks", nlohmann::json::array()},
                             {"agent", false}}},
                           {"saved_realtime_ns", 1},
                           {"saved_at", "\x1b]0;pwned\x07\x1b[31m"},
                           {"state_bytes", 0},
                           {"checksum", "0000000000000000"}};
  std::string text = "KVMRUN-SNAPSHOT\n" + header.dump();
  text.resize(65536, ' ');
  const std::string file = scratch_.File("evil.kvmrun", text);
  const CommandResult r = testing::RunKvmrun({"snapshot", "show", file}, Options());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\\x1b]0;pwned\\x07"), std::string::npos) << r.out;
}

// --dry-run is held to run's rules, prints private paths, and runs nothing a VM file names.
TEST_F(HardeningTest, DryRunValidatesAndRunsNothingOfAVmFile) {
  auto args = Guest();
  args.insert(args.end(), {"--name", "../x", "--dry-run"});
  CommandResult r = testing::RunKvmrun(args, Options());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--name: invalid value '../x'"), std::string::npos) << r.err;

  // Without XDG_RUNTIME_DIR: nothing in a shared temporary directory.
  auto options = Options();
  options.extra_env.push_back("XDG_RUNTIME_DIR=");
  args = Guest();
  args.insert(args.end(), {"--display", "spice", "--dry-run"});
  r = testing::RunKvmrun(args, options);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Every socket (QMP, agent, the unauthenticated SPICE one) in the user's own cache directory.
  const std::regex socket_path("(path|addr)=([^,]+)");
  int sockets = 0;
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), socket_path);
       it != std::sregex_iterator(); ++it, ++sockets) {
    EXPECT_EQ((*it)[2].str().rfind(scratch_.Cache() + "/", 0), 0u) << (*it)[2].str();
  }
  EXPECT_EQ(sockets, 3) << r.out;

  // A VM file's qemu is a program it names: a dry run does not run it.
  const std::string ran = scratch_.Path("qemu-ran");
  const std::string fake = scratch_.File("fake-qemu", "#!/bin/sh\ntouch " + ran + "\n", 0755);
  const std::string file = scratch_.File(
      "vm.toml", "qemu = \"" + fake + "\"\nkernel = \"" + testing::TestKernel() + "\"\n");
  r = testing::RunKvmrun({"run", file, "--dry-run"}, Options());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--dry-run does not run the QEMU a VM file names"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(ran));
}

// Without XDG_RUNTIME_DIR, named VMs live where no other user can claim the name first.
TEST_F(HardeningTest, TheRuntimeFallbackIsNotInASharedDirectory) {
  auto options = Options();
  options.extra_env.push_back("XDG_RUNTIME_DIR=");
  const CommandResult r = testing::RunKvmrun({"ps"}, options);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists("/tmp/kvmrun-" + std::to_string(geteuid())));
}

}  // namespace
}  // namespace kvmrun

// Bad inputs and faults, through the CLI and through the library. Every case asserts the exit
// code (or exception type), a one-line error that names the problem, and that nothing was left
// behind: no process, no runtime directory, no socket file, no descriptor.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <thread>

#include "kvmrun/boot_case.h"
#include "kvmrun/error.h"
#include "kvmrun/qemu_command.h"
#include "kvmrun/qmp_client.h"
#include "kvmrun/qmp_commands.h"
#include "kvmrun/vm.h"
#include "tests/support/fake_kvm_host.h"
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

constexpr uid_t kNobody = 65534;

using testing::Leftovers;
using testing::Scratch;

struct CliCase {
  std::string name;
  std::vector<std::string> args;  // after "kvmrun"
  int exit_code;
  std::string message;  // must appear in the first line of stderr
  std::vector<std::string> env = {};
  bool as_nobody = false;  // run as an unprivileged user (root reads any file)
};

// Runs the CLI for `c`, as "nobody" when asked (a child drops its privileges, then execs).
testing::CommandResult RunCase(const CliCase& c, const Scratch& scratch) {
  std::vector<std::string> argv;
  if (c.as_nobody) {
    argv = {"setpriv", "--reuid=" + std::to_string(kNobody), "--regid=" + std::to_string(kNobody),
            "--clear-groups", "--"};
  }
  argv.push_back(KVMRUN_CLI_PATH);
  argv.insert(argv.end(), c.args.begin(), c.args.end());
  testing::CommandOptions options;
  options.timeout = 60s;
  options.extra_env = scratch.Env();
  options.extra_env.insert(options.extra_env.end(), c.env.begin(), c.env.end());
  return testing::RunCommand(argv, options);
}

class ReliabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    qemu_ = testing::TestQemuBinary();
    if (qemu_.empty()) GTEST_SKIP() << "qemu-system-x86_64 not installed";
    kernel_ = scratch_.File("vmlinuz", "not really a kernel");
  }

  // Checks one CLI case and counts it; returns whether it held.
  void Check(const CliCase& c) {
    SCOPED_TRACE("case: " + c.name);
    const auto r = RunCase(c, scratch_);
    ++tried_;
    const std::string first = testing::Lines(r.err).empty() ? "" : testing::Lines(r.err)[0];
    const bool ok = !r.timed_out && r.exit_code == c.exit_code &&
                    first.find(c.message) != std::string::npos &&
                    (c.exit_code != 2 || testing::Lines(r.err).size() == 1);
    EXPECT_TRUE(ok) << "exit " << r.exit_code << " (want " << c.exit_code << ")"
                    << (r.timed_out ? " TIMED OUT" : "") << "\nstderr:\n"
                    << r.err << "want in the first line: " << c.message;
    const auto left = Leftovers(scratch_.Path(""));
    EXPECT_TRUE(left.empty()) << "left behind: " << left.front();
    leaks_ += left.size();
    survived_ += ok && left.empty();
  }

  std::string qemu_;
  std::string kernel_;
  Scratch scratch_;
  int tried_ = 0;
  int survived_ = 0;
  std::size_t leaks_ = 0;
};

TEST_F(ReliabilityTest, CliBadInputsAndFaults) {
  const std::string dir = scratch_.Dir("a-directory");
  const std::string unreadable = scratch_.File("unreadable", "x", 0600);
  const std::string plain = scratch_.File("plain-file", "x", 0644);
  const std::string garbage =
      scratch_.File("garbage-qemu", "#!/bin/sh\necho 'I am a toaster'\n", 0755);
  // Behaves like QEMU for kvmrun's probe, then crashes when asked to run a VM.
  const std::string crashing =
      scratch_.File("crashing-qemu",
                    "#!/bin/sh\ncase \" $* \" in *' -help '*|*' -machine none '*) exec " + qemu_ +
                        " \"$@\";; esac\nkill -SEGV $$\n",
                    0755);
  const std::string long_socket = scratch_.Path(std::string(110, 's'));
  const std::vector<std::string> run = {"run", "--accel", "tcg", "--qemu", qemu_};
  const auto Run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = run;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const std::vector<CliCase> cases = {
      {"unknown OS (run)", Run({"--os", "beos"}), 2, "unknown guest OS 'beos'; valid: windows-xp"},
      {"unknown OS (policy)", {"policy", "--os", "beos"}, 2, "unknown guest OS 'beos'"},
      {"unknown OS (boot-test)",
       {"boot-test", "--os", "beos", "--kernel", kernel_, "--expect", "x"},
       2,
       "unknown guest OS 'beos'"},
      {"unknown OS (verify)",
       {"verify", "--qmp-socket", "/nowhere", "--os", "beos"},
       2,
       "unknown guest OS 'beos'"},
      {"bad --pit-policy", Run({"--os", "linux", "--pit-policy", "slew"}), 2,
       "--pit-policy: invalid value 'slew'; valid: delay, discard"},
      {"bad --rtc-policy", Run({"--os", "linux", "--rtc-policy", "catchup"}), 2,
       "--rtc-policy: invalid value 'catchup'"},
      {"bad --rtc-base", Run({"--os", "linux", "--rtc-base", "gmt"}), 2,
       "--rtc-base: invalid value 'gmt'"},
      {"bad --hpet", Run({"--os", "linux", "--hpet", "maybe"}), 2,
       "--hpet: invalid value 'maybe'; valid: off, on"},
      {"bad --hv-time", Run({"--os", "linux", "--hv-time", "1"}), 2,
       "--hv-time: invalid value '1'"},
      {"bad --kvmclock", Run({"--os", "linux", "--kvmclock", "yes"}), 2,
       "--kvmclock: invalid value 'yes'"},
      {"memory 0", Run({"--os", "linux", "--memory", "0"}), 2, "--memory: invalid value '0'"},
      {"memory abc", Run({"--os", "linux", "--memory", "abc"}), 2, "--memory: invalid value 'abc'"},
      {"memory 1T", Run({"--os", "linux", "--memory", "1T", "--kernel", kernel_}), 2,
       "MiB is more than this host's"},
      {"cpus 0", Run({"--os", "linux", "--cpus", "0"}), 2,
       "--cpus: invalid value '0'; valid: 1 to 1024"},
      {"cpus -1", Run({"--os", "linux", "--cpus", "-1"}), 2, "--cpus: invalid value '-1'"},
      {"cpus not a number", Run({"--os", "linux", "--cpus", "two"}), 2,
       "('two') for option '--cpus' is invalid"},
      {"missing kernel", Run({"--os", "linux", "--kernel", scratch_.Path("none")}), 2,
       "No such file or directory"},
      {"directory kernel", Run({"--os", "linux", "--kernel", dir}), 2, "is a directory"},
      {"unreadable kernel",
       Run({"--os", "linux", "--kernel", unreadable}),
       2,
       "is not readable",
       {},
       true},
      {"missing initrd",
       Run({"--os", "linux", "--kernel", kernel_, "--initrd", scratch_.Path("none")}), 2,
       "--initrd: '"},
      {"directory initrd", Run({"--os", "linux", "--kernel", kernel_, "--initrd", dir}), 2,
       "is a directory"},
      {"unreadable initrd",
       Run({"--os", "linux", "--kernel", plain, "--initrd", unreadable}),
       2,
       "is not readable",
       {},
       true},
      {"initrd without kernel", Run({"--os", "linux", "--initrd", plain}), 2,
       "--kernel: an initrd or a kernel command line needs a kernel"},
      {"missing disk", Run({"--os", "linux", "--disk", scratch_.Path("none.img")}), 2, "--disk: '"},
      {"directory disk", Run({"--os", "linux", "--disk", dir}), 2, "is a directory"},
      {"unreadable disk",
       Run({"--os", "linux", "--disk", unreadable}),
       2,
       "is not readable",
       {},
       true},
      {"QEMU path missing",
       {"run", "--os", "linux", "--qemu", scratch_.Path("no-qemu")},
       2,
       "--qemu: '" + scratch_.Path("no-qemu") + "': No such file or directory"},
      {"QEMU not executable",
       {"run", "--os", "linux", "--qemu", plain},
       2,
       "is not an executable file"},
      {"QEMU is /bin/true",
       {"run", "--os", "linux", "--accel", "tcg", "--qemu", "/bin/true"},
       2,
       "'/bin/true' does not look like qemu-system-x86_64"},
      {"QEMU prints garbage",
       {"run", "--os", "linux", "--accel", "tcg", "--qemu", garbage},
       2,
       "printing: I am a toaster"},
      {"QEMU crashes at start",
       {"run", "--os", "linux", "--accel", "tcg", "--qemu", crashing, "--kernel", kernel_},
       1,
       "QEMU did not start"},
      {"QEMU rejects an extra argument", Run({"--os", "linux", "--extra-arg=-bogus-option"}), 1,
       "-bogus-option: invalid option"},
      {"QMP socket path over 107 bytes (run)", Run({"--os", "linux", "--qmp-socket", long_socket}),
       2, "--qmp-socket: the path is"},
      {"QMP socket path over 107 bytes (qmp)",
       {"qmp", "--qmp-socket", long_socket, "query-kvm"},
       2,
       "a Unix socket path must be 1 to 107 bytes"},
      {"runtime dir cannot be created",
       Run({"--os", "linux"}),
       2,
       "cannot create a runtime directory in '/nonexistent/run'",
       {"XDG_RUNTIME_DIR=/nonexistent/run"}},
      {"console log unwritable",
       Run({"--os", "linux", "--console-log", scratch_.Path("no/such/dir/log")}), 2,
       "--console-log: '"},
      {"bad --verify", Run({"--os", "linux", "--verify", "strict"}), 2,
       "--verify: invalid value 'strict'"},
      {"bad --accel",
       {"run", "--os", "linux", "--accel", "hvf"},
       2,
       "--accel: invalid value 'hvf'"},
      {"bad --timeout", Run({"--os", "linux", "--timeout", "-3"}), 2, "--timeout: invalid value"},
      {"boot-test bad regex",
       {"boot-test", "--kernel", kernel_, "--expect", "(unclosed"},
       2,
       "invalid regular expression '(unclosed'"},
      {"boot-test cases is a directory", {"boot-test", "--cases", dir}, 2, "not a readable file"},
      {"boot-test nothing to boot", {"boot-test", "--expect", "x"}, 2, "nothing to boot"},
      {"qmp bad ARGS-JSON",
       {"qmp", "--qmp-socket", "/nowhere", "qom-get", "{oops"},
       2,
       "is not a JSON object"},
      {"qmp --count 0",
       {"qmp", "--qmp-socket", "/nowhere", "--events", "--count", "0"},
       2,
       "--count: invalid value '0'"},
      {"verify unreachable socket",
       {"verify", "--qmp-socket", scratch_.Path("none.sock"), "--os", "linux"},
       1,
       "cannot connect to QMP socket"},
      {"unknown subcommand", {"launch"}, 2, "unknown subcommand 'launch'; valid: run"},
      {"unknown option", Run({"--os", "linux", "--turbo"}), 2, "unrecognised option '--turbo'"},
      {"Boost placeholder in an option", {"run", "-o%canonical_option%"}, 2, "%canonical_option%"},
  };
  for (const CliCase& c : cases) Check(c);
  EXPECT_EQ(testing::ChildPids(), "");
  std::cout << "reliability (cli): " << tried_ << " inputs tried, " << survived_
            << " held, leaks found: " << leaks_ << std::endl;
  EXPECT_GE(tried_, 40);
}

// Misbehaving QMP peers, through `kvmrun qmp` and `kvmrun verify`.
TEST_F(ReliabilityTest, CliAgainstFakeQmpServers) {
  using B = testing::FakeServerBehaviour;
  struct ServerCase {
    B behaviour;
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<ServerCase> cases = {
      {B::kGarbage, {"qmp", "query-status"}, 1, "QMP stream: expected '{'"},
      {B::kGarbage, {"verify", "--os", "linux"}, 1, "QMP stream"},
      {B::kPartialThenClose, {"qmp", "query-status"}, 1, "in the middle of a message"},
      {B::kNoGreeting,
       {"qmp", "query-status", "--timeout", "1"},
       1,
       "waiting for the QMP greeting"},
      {B::kNeverAnswers,
       {"qmp", "query-status", "--timeout", "0.5"},
       1,
       "waiting for the reply to 'query-status': none within 500 ms"},
      {B::kHugeReply, {"qmp", "query-version"}, 0, ""},
  };
  for (const ServerCase& c : cases) {
    const std::string socket = scratch_.Path("fake.sock");
    std::optional<testing::FakeQmpServer> server;
    server.emplace(socket, c.behaviour);
    std::vector<std::string> args = c.args;
    args.insert(args.begin() + 1, {args[0] == "qmp" ? "--socket" : "--qmp-socket", socket});
    SCOPED_TRACE(args[0] + " " + args.back());
    const auto r = RunCase({"fake server", args, c.exit_code, c.message}, scratch_);
    ++tried_;
    const bool ok = r.exit_code == c.exit_code && r.err.find(c.message) != std::string::npos;
    EXPECT_TRUE(ok) << r.exit_code << "\n" << r.err;
    if (c.behaviour == B::kHugeReply) {
      EXPECT_GT(r.out.size(), 10u << 20);
    }
    server.reset();
    const auto left = Leftovers(scratch_.Path(""));
    EXPECT_TRUE(left.empty());
    survived_ += ok && left.empty();
    leaks_ += left.size();
  }
  std::cout << "reliability (qmp faults): " << tried_ << " faults tried, " << survived_
            << " survived, leaks found: " << leaks_ << std::endl;
}

using testing::FakeKvmHost;

// The same kinds of failure through the library: the exception type and a one-line message.
TEST_F(ReliabilityTest, LibraryBadInputsAndFaults) {
  const int fds = testing::OpenFdCount();
  const std::string crashing =
      scratch_.File("crash-qemu",
                    "#!/bin/sh\ncase \" $* \" in *' -help '*|*' -machine none '*) exec " + qemu_ +
                        " \"$@\";; esac\nkill -SEGV $$\n",
                    0755);
  const auto options = [&](std::shared_ptr<KvmHost> host = nullptr) {
    VmOptions o;
    o.runtime_base = scratch_.Run();
    o.cache_dir = scratch_.Cache();
    o.kvm_host = std::move(host);
    return o;
  };
  const auto spec = [&](auto&& edit) {
    VmSpec s;
    s.qemu = qemu_;
    s.accel = AccelRequest::kTcg;
    edit(s);
    return s;
  };
  auto no_node = std::make_shared<FakeKvmHost>();
  no_node->node = false;
  auto eacces = std::make_shared<FakeKvmHost>();
  eacces->open_error = EACCES;

  struct LibraryCase {
    std::string name;
    std::function<void()> run;
    std::string
        type;  // "usage", "vm", "mismatch", "qmp-protocol", "qmp-timeout", "qmp-disconnected"
    std::string message;
  };
  const std::vector<LibraryCase> cases = {
      {"unknown OS", [] { ParseGuestOs("beos"); }, "usage", "unknown guest OS 'beos'"},
      {"bad memory", [] { ParseMemorySize("abc"); }, "usage", "memory_mib: invalid value 'abc'"},
      {"zero CPUs", [&] { Vm::Start(spec([](VmSpec& s) { s.cpus = 0; }), options()); }, "usage",
       "cpus: invalid value '0'"},
      {"missing kernel",
       [&] { Vm::Start(spec([&](VmSpec& s) { s.kernel = scratch_.Path("none"); }), options()); },
       "usage", "No such file or directory"},
      {"QEMU is /bin/true",
       [&] { Vm::Start(spec([](VmSpec& s) { s.qemu = "/bin/true"; }), options()); }, "usage",
       "does not look like qemu-system-x86_64"},
      {"runtime base missing",
       [&] {
         VmOptions o = options();
         o.runtime_base = "/nonexistent/run";
         Vm::Start(spec([](VmSpec&) {}), o);
       },
       "usage", "cannot create a runtime directory"},
      {"--accel kvm, /dev/kvm absent",
       [&] { Vm::Start(spec([](VmSpec& s) { s.accel = AccelRequest::kKvm; }), options(no_node)); },
       "vm", "KVM was asked for: no /dev/kvm"},
      {"--accel kvm, /dev/kvm EACCES",
       [&] { Vm::Start(spec([](VmSpec& s) { s.accel = AccelRequest::kKvm; }), options(eacces)); },
       "vm", "KVM was asked for: no permission to open /dev/kvm (owned by group 'kvm')"},
      {"QEMU crashing at start",
       [&] { Vm::Start(spec([&](VmSpec& s) { s.qemu = crashing; }), options()); }, "vm",
       "QEMU did not start"},
      {"QEMU rejects an argument",
       [&] { Vm::Start(spec([](VmSpec& s) { s.extra_args = {"-bogus-option"}; }), options()); },
       "vm", "invalid option"},
      {"policy broken by an extra argument",
       [&] {
         Vm::Start(spec([](VmSpec& s) { s.extra_args = {"-machine", "hpet=on"}; }), options());
       },
       "mismatch", "clock verification failed: hpet expected off, observed on"},
      {"QMP socket path too long", [&] { ConnectQmpSocket(std::string(200, 'x')); }, "usage",
       "a Unix socket path must be 1 to 107 bytes"},
      {"boot case with a bad regex",
       [&] {
         BootCase c;
         c.spec.kernel = scratch_.Path("vmlinuz");
         // Not `c.expect = "["`: at -O3 GCC 12 reports a false -Wrestrict in std::string's
         // assignment from a short literal (GCC bug 105651).
         c.expect = std::string(1, '[');
         ValidateBootCase(c);
       },
       "usage", "invalid regular expression"},
  };
  for (const LibraryCase& c : cases) {
    SCOPED_TRACE("case: " + c.name);
    ++tried_;
    std::string type = "none", message;
    try {
      c.run();
    } catch (const UsageError& e) {
      type = "usage", message = e.what();
    } catch (const ClockMismatchError& e) {
      type = "mismatch", message = e.what();
    } catch (const VmError& e) {
      type = "vm", message = e.what();
    } catch (const Error& e) {
      type = "other", message = e.what();
    }
    const bool ok = type == c.type && message.find(c.message) != std::string::npos &&
                    message.find('\n') == std::string::npos;
    EXPECT_TRUE(ok) << type << ": " << message;
    const auto left = Leftovers(scratch_.Path(""));
    EXPECT_TRUE(left.empty()) << left.front();
    EXPECT_EQ(testing::ChildPids(), "");
    EXPECT_EQ(testing::OpenFdCount(), fds);
    survived_ += ok && left.empty();
    leaks_ += left.size();
  }

  // Not an error: with auto, /dev/kvm EACCES means TCG and a notice.
  ++tried_;
  std::vector<std::string> notices;
  VmOptions o = options(eacces);
  o.on_notice = [&](std::string_view n) { notices.emplace_back(n); };
  {
    auto vm = Vm::Start(spec([](VmSpec& s) { s.accel = AccelRequest::kAuto; }), o);
    EXPECT_EQ(vm->accel().accel, Accel::kTcg);
    ASSERT_EQ(notices.size(), 1u);
    EXPECT_NE(notices[0].find("no permission to open /dev/kvm"), std::string::npos);
  }
  survived_ += Leftovers(scratch_.Path("")).empty() && testing::OpenFdCount() == fds;
  std::cout << "reliability (library): " << tried_ << " inputs tried, " << survived_
            << " held, leaks found: " << leaks_ << std::endl;
}

}  // namespace
}  // namespace kvmrun

namespace kvmrun {
namespace {

// Faults and security properties that need a running VM (the test guest, under TCG).
class VmFaultTest : public ReliabilityTest {
 protected:
  void SetUp() override {
    ReliabilityTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(fs::exists(testing::TestKernel())) << "run scripts/make-test-guest";
  }
  std::vector<std::string> Env() const {
    return {"XDG_RUNTIME_DIR=" + scratch_.Run(), "XDG_CACHE_HOME=" + scratch_.Cache(),
            "KVMRUN_QEMU=" + qemu_};
  }
  std::vector<std::string> HoldingGuest(const std::string& name) const {
    std::vector<std::string> argv = {KVMRUN_CLI_PATH};
    const auto args = testing::RunTestGuestArgs("linux", "kvmrun.hold");
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--name", name});
    return argv;
  }
  // The QEMU whose argv holds `name`, once it runs.
  pid_t WaitForQemu(const std::string& name) const {
    for (int i = 0; i < 400; ++i) {
      const auto pids = testing::QemusOfVm(name);
      if (!pids.empty()) return pids[0];
      std::this_thread::sleep_for(25ms);
    }
    return -1;
  }
  static std::string Unique(const std::string& what) {
    return "kvmrun-rel-" + what + "-" + std::to_string(std::random_device{}());
  }
};

TEST_F(VmFaultTest, QemuKilledMidRunIsAFailureWithItsSignal) {
  const std::string name = Unique("killed");
  testing::ScopedProcess kvmrun(HoldingGuest(name), Env(), scratch_.Path("kvmrun.log"));
  const pid_t qemu = WaitForQemu(name);
  ASSERT_GT(qemu, 0) << kvmrun.Output();
  // Mid-run: the guest has booted and is holding.
  for (int i = 0; i < 1200 && kvmrun.Output().find("KVMRUN-GUEST-HOLDING") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_NE(kvmrun.Output().find("KVMRUN-GUEST-HOLDING"), std::string::npos) << kvmrun.Output();
  kill(qemu, SIGKILL);
  const auto status = kvmrun.WaitExit(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 1);
  EXPECT_NE(kvmrun.Output().find("kvmrun run: QEMU killed by SIGKILL"), std::string::npos)
      << kvmrun.Output();
  EXPECT_TRUE(Leftovers(scratch_.Path("")).empty());
}

TEST_F(VmFaultTest, KillNineLeavesNoQemuAndTheNextRunRemovesOnlyItsStaleDirectory) {
  const std::string name = Unique("kill9");
  // Directories that are not a dead kvmrun's: they must survive the cleanup.
  const std::string live_owner = scratch_.Run() + "/kvmrun-1-abcdef";  // pid 1 always runs
  const std::string foreign = scratch_.Run() + "/kvmrun-cache";
  fs::create_directories(live_owner);
  fs::create_directories(foreign);
  pid_t qemu;
  {
    // Unnamed, so that its runtime directory is kvmrun-<pid>-XXXXXX (a named VM's is cleaned
    // by the next `ps` or claim of its name: NamedVmTest). Found by its kernel command line.
    std::vector<std::string> argv = {KVMRUN_CLI_PATH};
    const auto args = testing::RunTestGuestArgs("linux", "kvmrun.hold kvmrun.tag=" + name);
    argv.insert(argv.end(), args.begin(), args.end());
    testing::ScopedProcess kvmrun(argv, Env(), scratch_.Path("kvmrun.log"));
    for (int i = 0; i < 400; ++i) {
      // The --append value, as QEMU gets it under TCG (KernelCommandLine adds no_timer_check).
      const auto pids = testing::QemusWithArgument(args[10] + " no_timer_check");
      qemu = pids.empty() ? -1 : pids[0];
      if (qemu > 0) break;
      std::this_thread::sleep_for(25ms);
    }
    ASSERT_GT(qemu, 0) << kvmrun.Output();
    kvmrun.Signal(SIGKILL);
    ASSERT_TRUE(kvmrun.WaitExit(5s).has_value());
  }
  std::this_thread::sleep_for(2s);
  EXPECT_FALSE(testing::ProcessExists(qemu)) << "QEMU survived kill -9 of kvmrun";
  std::vector<std::string> stale;
  for (const auto& entry : fs::directory_iterator(scratch_.Run())) {
    const std::string path = entry.path().string();
    if (path != live_owner && path != foreign) stale.push_back(path);
  }
  ASSERT_EQ(stale.size(), 1u) << "kill -9 leaves the runtime directory";

  testing::CommandOptions options;
  options.extra_env = Env();
  options.timeout = 120s;
  const auto next = testing::RunKvmrun(testing::RunTestGuestArgs("linux"), options);
  EXPECT_EQ(next.exit_code, 0) << next.err;
  EXPECT_FALSE(fs::exists(stale[0])) << "the next run removes the dead run's directory";
  EXPECT_TRUE(fs::exists(live_owner));
  EXPECT_TRUE(fs::exists(foreign));
  fs::remove(live_owner);
  fs::remove(foreign);
}

TEST_F(VmFaultTest, PathsWithCommasSpacesQuotesAndNewlinesWork) {
  const std::string odd = scratch_.Dir("a, dir with \"quotes\" and 'apostrophes'\nand a newline");
  fs::copy_file(testing::TestKernel(), odd + "/vm,linuz");
  fs::copy_file(testing::TestInitrd(), odd + "/init rd,gz");
  const std::string disk = odd + "/disk,1 \"x\".img";
  std::string disk_arg;  // a comma in --disk is written ",,"
  for (char c : disk) disk_arg += c == ',' ? std::string(",,") : std::string(1, c);
  std::ofstream(disk) << std::string(1 << 20, '\0');
  const std::string socket = odd + "/q,m p.sock";
  testing::CommandOptions options;
  options.extra_env = Env();
  options.timeout = 120s;
  const auto r = testing::RunKvmrun(
      {"run", "--os", "linux", "--accel", "tcg", "--kernel", odd + "/vm,linuz", "--initrd",
       odd + "/init rd,gz", "--append", "console=ttyS0 quiet panic=-1 x=\"a,b c\"", "--disk",
       disk_arg, "--qmp-socket", socket, "--no-reboot"},
      options);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(testing::kGuestMarker), std::string::npos);
  EXPECT_FALSE(fs::exists(socket)) << "the public socket is removed";
  EXPECT_TRUE(Leftovers(scratch_.Path("")).empty());
}

TEST_F(VmFaultTest, PublicQmpSocketIsPrivateToTheUserAndGoneAfterwards) {
  const std::string socket = scratch_.Path("public.sock");
  VmSpec spec;
  spec.qemu = qemu_;
  spec.accel = AccelRequest::kTcg;
  spec.qmp_socket = socket;
  VmOptions options;
  options.runtime_base = scratch_.Run();
  options.cache_dir = scratch_.Cache();
  {
    auto vm = Vm::Start(spec, options);
    struct stat st {};
    ASSERT_EQ(stat(socket.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    struct stat dir {};
    ASSERT_EQ(stat(vm->runtime_dir().c_str(), &dir), 0);
    EXPECT_EQ(dir.st_mode & 0777, 0700u);
    QmpClient outside(ConnectQmpSocket(socket, 5s));
    EXPECT_EQ(QueryStatus(outside).status, "prelaunch");
    // QEMU is killed, not asked: it cannot remove its own socket then.
    kill(vm->pid(), SIGKILL);
    EXPECT_TRUE(vm->WaitForExit(10s).has_value());
  }
  EXPECT_FALSE(fs::exists(socket));
  EXPECT_TRUE(Leftovers(scratch_.Path("")).empty());
}

TEST_F(VmFaultTest, ArgumentsNeverPassThroughAShell) {
  const std::string witness = scratch_.Path("shell-ran");
  VmSpec spec;
  spec.qemu = qemu_;
  spec.accel = AccelRequest::kTcg;
  spec.kernel = testing::TestKernel();
  spec.append = "console=ttyS0 $(touch " + witness + ") `touch " + witness + "` ; touch " + witness;
  spec.name = "n;touch " + witness;
  VmOptions options;
  options.runtime_base = scratch_.Run();
  options.cache_dir = scratch_.Cache();
  auto vm = Vm::Start(spec, options);
  std::ifstream in("/proc/" + std::to_string(vm->pid()) + "/cmdline", std::ios::binary);
  const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(
      cmdline.find(std::string("\0-append\0", 9) + KernelCommandLine(spec, Accel::kTcg) + '\0'),
      std::string::npos);
  vm->Shutdown(0ms);
  EXPECT_FALSE(fs::exists(witness));
}

// Load: one process starts and stops 20 guests at once, three rounds; afterwards descriptors
// and children are back to where they were and no directory is left.
TEST_F(VmFaultTest, TwentyGuestsAtOnceThreeRounds) {
  const int fds = testing::OpenFdCount();
  VmSpec spec;
  spec.qemu = qemu_;
  spec.accel = AccelRequest::kTcg;
  spec.memory_mib = 128;
  spec.kernel = testing::TestKernel();
  spec.initrd = testing::TestInitrd();
  spec.append = "console=ttyS0 quiet panic=-1 kvmrun.hold";
  spec.no_reboot = true;
  VmOptions options;
  options.runtime_base = scratch_.Run();
  options.cache_dir = scratch_.Cache();
  int failures = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < 3; ++round) {
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 20; ++i) {
      threads.emplace_back([&] {
        try {
          auto vm = Vm::Start(spec, options);
          vm->Continue();
          std::this_thread::sleep_for(500ms);  // running, mid-boot
          const ShutdownResult r = vm->Shutdown(0ms);
          if (r.step == ShutdownStep::kKill) ++failed;
        } catch (const Error& e) {
          ++failed;
          ADD_FAILURE() << e.what();
        }
      });
    }
    for (std::thread& t : threads) t.join();
    failures += failed;
    EXPECT_EQ(testing::OpenFdCount(), fds) << "round " << round;
    EXPECT_EQ(testing::ChildPids(), "") << "round " << round;
    EXPECT_TRUE(Leftovers(scratch_.Path("")).empty()) << "round " << round;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "load: 3 rounds x 20 guests, " << failures << " failures, " << seconds << " s"
            << std::endl;
  EXPECT_EQ(failures, 0);
}

}  // namespace
}  // namespace kvmrun

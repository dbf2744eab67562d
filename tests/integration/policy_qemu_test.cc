// The rendered clock argv for every catalog OS is accepted by the real qemu-system-x86_64.
#include <gtest/gtest.h>

#include "kvmrun/clock_rendering.h"
#include "kvmrun/policy_format.h"
#include "tests/support/qemu_binary.h"
#include "tests/support/run_command.h"

namespace kvmrun {

// Readable parameter names in test output.
void PrintTo(GuestOs os, std::ostream* out) { *out << ToString(os); }

namespace {

using testing::RunCommand;

// The installed binary's version, from `--version`.
QemuVersion InstalledVersion(const std::string& qemu) {
  const auto r = RunCommand({qemu, "--version"});
  const std::string marker = "version ";
  const auto at = r.out.find(marker);
  if (at == std::string::npos) return {};
  const auto end = r.out.find_first_of(" \n", at + marker.size());
  return ParseQemuVersion(r.out.substr(at + marker.size(), end - at - marker.size()))
      .value_or(QemuVersion{});
}

// Starts QEMU paused under TCG with `clock_argv`, does the QMP handshake and quits.
testing::CommandResult StartPausedAndQuit(const std::string& qemu,
                                          const std::vector<std::string>& clock_argv) {
  std::vector<std::string> argv = {qemu,     "-S",  "-nodefaults", "-display", "none",
                                   "-accel", "tcg", "-qmp",        "stdio"};
  argv.insert(argv.end(), clock_argv.begin(), clock_argv.end());
  testing::CommandOptions options;
  options.stdin_text = "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n";
  options.timeout = std::chrono::seconds(30);
  return RunCommand(argv, options);
}

class RenderedArgvAcceptedTest : public ::testing::TestWithParam<GuestOs> {};

// Both renderings of every OS. Under KVM the argv can only be started with a working KVM, which
// these machines lack; QEMU parses the KVM-only parts (kvm-pit global, Hyper-V CPU flags) under
// TCG too, so starting it under TCG proves QEMU accepts the spelling.
TEST_P(RenderedArgvAcceptedTest, QemuStartsPausedAndQuitsCleanly) {
  KVMRUN_REQUIRE_QEMU(qemu);
  const QemuVersion version = InstalledVersion(qemu);
  ASSERT_GT(version.major, 0) << "cannot read the version of " << qemu;
  const QemuCapabilities caps =
      ShippedCapabilitiesFor(std::to_string(version.major) + "." + std::to_string(version.minor));
  for (Accel accel : kAllAccels) {
    const ClockRendering r = RenderClock(MakeClockPolicy(GetParam()), caps, accel);
    const auto clock_argv = ClockArgv(r, "max");
    const auto result = StartPausedAndQuit(qemu, clock_argv);
    EXPECT_EQ(result.exit_code, 0) << ToString(accel) << ": " << ShellJoin(clock_argv) << "\n"
                                   << result.err;
    EXPECT_NE(result.out.find("\"SHUTDOWN\""), std::string::npos) << result.out;
    EXPECT_EQ(result.err.find("warning"), std::string::npos) << result.err;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryOs, RenderedArgvAcceptedTest,
                         ::testing::Values(GuestOs::kWindowsXp, GuestOs::kWindows2003,
                                           GuestOs::kWindows7, GuestOs::kWindows10,
                                           GuestOs::kWindows11, GuestOs::kWindowsServer2016,
                                           GuestOs::kWindowsServer2019, GuestOs::kWindowsServer2022,
                                           GuestOs::kWindowsServer2025, GuestOs::kLinux,
                                           GuestOs::kLinuxLegacy, GuestOs::kFreeBsd,
                                           GuestOs::kOther),
                         [](const auto& info) {
                           std::string name(ToString(info.param));
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

// Why version-awareness matters: the 2.12 spelling of the seed's PIT setting is an error on a
// QEMU >= 3.0.
TEST(RenderedArgvTest, TheOldPitFlagIsRejectedByTodaysQemu) {
  KVMRUN_REQUIRE_QEMU(qemu);
  if (InstalledVersion(qemu) < QemuVersion{3, 0, 0}) GTEST_SKIP() << "QEMU older than 3.0";
  const auto old =
      RenderClock(MakeClockPolicy(GuestOs::kLinux), ShippedCapabilitiesFor("2.12"), Accel::kKvm);
  const auto result = StartPausedAndQuit(qemu, old.argv);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.err.find("-no-kvm-pit-reinjection"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace kvmrun

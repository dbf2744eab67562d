// The rendered clock argv for every catalog OS is accepted by each real qemu-system-x86_64
// (the system's 7.2 and the backports' 10.0), rendered from that binary's probed capabilities.
#include <gtest/gtest.h>

#include <tuple>

#include "kvmrun/clock_rendering.h"
#include "kvmrun/policy_format.h"
#include "kvmrun/qemu_probe.h"
#include "launcher/qemu_install.h"
#include "tests/support/qemu_binary.h"
#include "tests/support/run_command.h"
#include "tests/support/test_names.h"

namespace kvmrun {
namespace {

using testing::RunCommand;

// Starts QEMU paused under TCG with `clock_argv`, does the QMP handshake and quits.
testing::CommandResult StartPausedAndQuit(const std::string& qemu,
                                          const std::vector<std::string>& clock_argv) {
  std::vector<std::string> argv = {qemu,     "-S",  "-nodefaults", "-display", "none",
                                   "-accel", "tcg", "-qmp",        "stdio"};
  for (const std::string& dir : FirmwareDirsFor(qemu)) argv.insert(argv.end(), {"-L", dir});
  argv.insert(argv.end(), clock_argv.begin(), clock_argv.end());
  testing::CommandOptions options;
  options.stdin_text = "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n";
  options.timeout = std::chrono::seconds(30);
  options.extra_env = EnvironmentFor(qemu);
  return RunCommand(argv, options);
}

QemuCapabilities Probe(const std::string& qemu) {
  auto runner = MakeProcessRunner();
  return ProbeQemu(qemu, *runner);
}

class RenderedArgvAcceptedTest : public ::testing::TestWithParam<std::tuple<std::string, GuestOs>> {
};

// Both renderings of every OS. Under KVM the argv can only be started with a working KVM, which
// these machines lack; QEMU parses the KVM-only parts (kvm-pit global, Hyper-V CPU flags) under
// TCG too, so starting it under TCG proves QEMU accepts the spelling.
TEST_P(RenderedArgvAcceptedTest, QemuStartsPausedAndQuitsCleanly) {
  const auto& [label, os] = GetParam();
  KVMRUN_REQUIRE_QEMU_LABELLED(qemu, label);
  const QemuCapabilities caps = Probe(qemu);
  for (Accel accel : kAllAccels) {
    const ClockRendering r = RenderClock(MakeClockPolicy(os), caps, accel);
    const auto clock_argv = ClockArgv(r, "max");
    const auto result = StartPausedAndQuit(qemu, clock_argv);
    // QEMU 7.2 realizes hv-vpindex under TCG too and asks KVM for it: an error at vCPU creation,
    // after every option has been parsed (an unknown or misspelt flag fails before). QEMU 10
    // starts the whole KVM set under TCG; tests/device/kvm_check runs it under real KVM.
    if (accel == Accel::kKvm && caps.version < QemuVersion{8, 0, 0} &&
        result.err.find("kernel doesn't allow setting HyperV VP_INDEX") != std::string::npos) {
      EXPECT_TRUE(caps.HasHv("hv-vpindex"));
      continue;
    }
    EXPECT_EQ(result.exit_code, 0) << ToString(accel) << ": " << ShellJoin(clock_argv) << "\n"
                                   << result.err;
    EXPECT_NE(result.out.find("\"SHUTDOWN\""), std::string::npos) << result.out;
    EXPECT_EQ(result.err.find("warning"), std::string::npos) << result.err;
  }
}

INSTANTIATE_TEST_SUITE_P(EachQemuEveryOs, RenderedArgvAcceptedTest,
                         ::testing::Combine(::testing::ValuesIn(testing::QemuLabels()),
                                            ::testing::ValuesIn(testing::AllGuestOs())),
                         testing::LabelAndOsName());

class QemuGenerationTest : public ::testing::TestWithParam<std::string> {};

// Why version-awareness matters: the 2.12 spelling of the seed's PIT setting is an error on a
// QEMU >= 3.0, and -no-hpet (still accepted by 7.2) is an error from 9.0.
TEST_P(QemuGenerationTest, RemovedOptionsAreRejectedWhereTheTablesSayTheyAreGone) {
  KVMRUN_REQUIRE_QEMU_LABELLED(qemu, GetParam());
  const QemuCapabilities caps = Probe(qemu);
  const auto old =
      RenderClock(MakeClockPolicy(GuestOs::kLinux), ShippedCapabilitiesFor("2.12"), Accel::kKvm);
  const auto with_old_flags = StartPausedAndQuit(qemu, old.argv);
  EXPECT_NE(with_old_flags.exit_code, 0);
  EXPECT_NE(with_old_flags.err.find("-no-kvm-pit-reinjection"), std::string::npos)
      << with_old_flags.err;

  const auto no_hpet = StartPausedAndQuit(qemu, {"-no-hpet"});
  if (caps.no_hpet_flag) {
    EXPECT_EQ(no_hpet.exit_code, 0) << no_hpet.err;
  } else {
    EXPECT_NE(no_hpet.exit_code, 0) << "QEMU " << ToString(caps.version) << " accepted -no-hpet";
    EXPECT_NE(no_hpet.err.find("-no-hpet"), std::string::npos) << no_hpet.err;
  }
}

// What kvmrun renders for each binary, pinned: the same intent, each QEMU's own spelling.
TEST_P(QemuGenerationTest, RendersTheSpellingOfItsVersion) {
  KVMRUN_REQUIRE_QEMU_LABELLED(qemu, GetParam());
  const QemuCapabilities caps = Probe(qemu);
  const ClockRendering r = RenderClock(MakeClockPolicy(GuestOs::kWindows11), caps, Accel::kKvm);
  EXPECT_EQ(
      ClockArgv(r, "host"),
      (std::vector<std::string>{
          "-global", "kvm-pit.lost_tick_policy=discard", "-rtc", "base=localtime,driftfix=slew",
          "-machine", "hpet=off", "-cpu",
          "host,hv-time,hv-relaxed,hv-vapic,hv-spinlocks=0x1fff,hv-vpindex,hv-runtime,hv-reset,"
          "hv-frequencies,hv-tlbflush,hv-synic,hv-stimer,hv-ipi"}));
  // Every Hyper-V property a policy can ask for is in both binaries, and there is an HPET.
  EXPECT_EQ(caps.hv_properties.size(), KnownHypervProperties().size());
  EXPECT_TRUE(caps.hpet_device);
  // The probe, not a guess: 7.2 still has -no-hpet (unused: -machine hpet= is preferred),
  // 10.0 does not.
  EXPECT_EQ(caps.no_hpet_flag, (caps.version < QemuVersion{9, 0, 0}));
  EXPECT_TRUE(caps.machine_hpet_property);
  EXPECT_FALSE(caps.no_kvm_pit_reinjection_flag);
}

INSTANTIATE_TEST_SUITE_P(EachQemu, QemuGenerationTest, ::testing::ValuesIn(testing::QemuLabels()));

}  // namespace
}  // namespace kvmrun

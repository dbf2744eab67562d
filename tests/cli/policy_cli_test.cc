// Drives the real kvmrun binary: exit codes, messages, formats.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "kvmrun/policy_format.h"
#include "tests/support/run_command.h"

namespace kvmrun {
namespace {

using testing::Lines;
using testing::RunKvmrun;

// Bad usage: exit 2 and exactly one line on stderr that contains `expected`.
void ExpectUsageError(const std::vector<std::string>& args, const std::string& expected) {
  const auto r = RunKvmrun(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(Lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(PolicyCliTest, ExplainWindows11) {
  // A shipped table: what this host's KVM can give (its Hyper-V capabilities) plays no part.
  const auto r = RunKvmrun({"policy", "--os", "windows-11", "--qemu-version", "7.2", "--explain"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Clock policy for windows-11"), std::string::npos);
  EXPECT_NE(r.out.find("localtime"), std::string::npos);
  EXPECT_NE(r.out.find("-global kvm-pit.lost_tick_policy=discard"), std::string::npos);
  EXPECT_NE(
      r.out.find("-cpu host,hv-time,hv-relaxed,hv-vapic,hv-spinlocks=0x1fff,hv-vpindex,"
                 "hv-runtime,hv-reset,hv-frequencies,hv-tlbflush,hv-synic,hv-stimer,hv-ipi\n"),
      std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("Notes:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("source: proxmox/qemu-server src/PVE/QemuServer/Cfg2Cmd/Timer.pm"),
            std::string::npos);
  EXPECT_NE(r.out.find("(QEMU default)"), std::string::npos);
}

TEST(PolicyCliTest, SeedCaseAsShell) {
  const auto r = RunKvmrun(
      {"policy", "--os", "linux", "--qemu-version", "2.12", "--accel", "kvm", "--format", "shell"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The seed's fragments, exactly and in its order (Nova bug 1011848), then the HPET.
  EXPECT_EQ(r.out, "-no-kvm-pit-reinjection -rtc base=utc,driftfix=slew -no-hpet\n");
}

// Every setting a catalog OS decides is written, QEMU's default or not; `other` keeps QEMU's.
TEST(PolicyCliTest, EveryDecisionIsWrittenAndOtherWritesNone) {
  const auto shell = [](std::vector<std::string> extra) {
    std::vector<std::string> args = {"policy", "--qemu-version", "7.2", "--accel", "kvm"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = RunKvmrun(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  EXPECT_EQ(shell({"--os", "windows-xp"}),
            "-global kvm-pit.lost_tick_policy=delay -rtc base=localtime,driftfix=slew "
            "-machine hpet=off\n");
  EXPECT_EQ(shell({"--os", "linux-legacy"}),
            "-global kvm-pit.lost_tick_policy=delay -rtc base=utc,driftfix=slew -machine hpet=off "
            "-cpu host,kvmclock=off\n");
  EXPECT_EQ(shell({"--os", "other"}), "\n");
  EXPECT_EQ(shell({"--os", "other", "--rtc-policy", "slew"}), "-rtc driftfix=slew\n");
  EXPECT_EQ(shell({"--os", "linux", "--rtc-policy", "discard"}),
            "-global kvm-pit.lost_tick_policy=discard -rtc base=utc,driftfix=none "
            "-machine hpet=off\n");
}

// Without --accel, the rendering is for the accelerator `run` would use here, and says so.
TEST(PolicyCliTest, RendersForTheAcceleratorRunWouldUse) {
  const auto r = RunKvmrun({"policy", "--os", "linux", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  if (access("/dev/kvm", R_OK | W_OK) != 0) {
    EXPECT_EQ(j["target"]["accel"], "tcg");
    EXPECT_NE(j["target"]["accel_note"].get<std::string>().find("rendered for TCG"),
              std::string::npos);
  }
  const auto shell = RunKvmrun({"policy", "--os", "linux"});
  EXPECT_NE(shell.err.find("note: accel: rendered for"), std::string::npos) << shell.err;
}

TEST(PolicyCliTest, ArgvFormatIsOnePerLine) {
  const auto r =
      RunKvmrun({"policy", "--os", "linux", "--qemu-version", "7.2", "--format", "argv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Lines(r.out),
            (std::vector<std::string>{"-global", "kvm-pit.lost_tick_policy=discard", "-rtc",
                                      "base=utc,driftfix=slew", "-machine", "hpet=off"}));
}

TEST(PolicyCliTest, TcgPrintsItsNotesOnStderr) {
  const auto r = RunKvmrun({"policy", "--os", "linux", "--accel", "tcg"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "-rtc base=utc,driftfix=slew -machine hpet=off\n");
  EXPECT_NE(r.err.find("note: pit-policy: TCG"), std::string::npos) << r.err;
}

TEST(PolicyCliTest, LibvirtXml) {
  const auto r = RunKvmrun({"policy", "--os", "linux", "--format", "libvirt-xml"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, LibvirtClockXml(MakeClockPolicy(GuestOs::kLinux)));
}

TEST(PolicyCliTest, JsonParsesAndItsPolicyRoundTrips) {
  const auto r = RunKvmrun({"policy", "--os", "win2k19", "--pit-policy", "discard", "--accel",
                            "kvm", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ClockOverrides o;
  o.pit_policy = PitTickPolicy::kDiscard;
  EXPECT_EQ(ClockPolicyFromJson(j["policy"]), MakeClockPolicy(GuestOs::kWindowsServer2019, o));
  EXPECT_EQ(j["target"]["accel"], "kvm");
  EXPECT_EQ(j["argv"][1], "kvm-pit.lost_tick_policy=discard");
  EXPECT_TRUE(j["notes"].is_array());
}

TEST(PolicyCliTest, ListShowsEveryOs) {
  const auto r = RunKvmrun({"policy", "--list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const GuestOsInfo& info : GuestOsCatalog()) {
    EXPECT_NE(r.out.find(std::string(info.name) + " "), std::string::npos) << info.name;
  }
  EXPECT_NE(r.out.find("rhel5"), std::string::npos);
}

TEST(PolicyCliTest, HelpTeaches) {
  const auto r = RunKvmrun({"policy", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--pit-policy"), std::string::npos);
  EXPECT_NE(r.out.find("Examples:"), std::string::npos);
}

TEST(PolicyCliTest, BadInputExitsTwoWithOneLineNamingTheValue) {
  ExpectUsageError({"policy", "--os", "beos"}, "unknown guest OS 'beos'; valid: windows-xp,");
  ExpectUsageError({"policy", "--os", "linux", "--format", "yaml"},
                   "--format: invalid value 'yaml'; valid: argv, shell, json, libvirt-xml");
  ExpectUsageError({"policy", "--os", "linux", "--accel", "hvf"},
                   "--accel: invalid value 'hvf'; valid: kvm, tcg");
  ExpectUsageError({"policy", "--os", "linux", "--pit-policy", "slew"},
                   "--pit-policy: invalid value 'slew'; valid: delay, discard");
  ExpectUsageError({"policy", "--os", "linux", "--hpet", "maybe"},
                   "--hpet: invalid value 'maybe'; valid: off, on");
  ExpectUsageError({"policy", "--os", "linux", "--qemu-version", "7.x"}, "malformed version '7.x'");
  ExpectUsageError({"policy", "--os", "linux", "--qemu-version", "8.0"},
                   "no capability table for QEMU '8.0'");
  ExpectUsageError({"policy"}, "--os is required");
  ExpectUsageError({"policy", "--os", "linux", "--bogus"}, "unrecognised option '--bogus'");
  ExpectUsageError({"policy", "--os"}, "--os");
  // Boost drops a stray word when no positional argument is declared: it once started a VM
  // with nothing to boot ("vmlinuz" was meant for --kernel).
  ExpectUsageError({"run", "--os", "linux", "vmlinuz"}, "unexpected argument 'vmlinuz'");
  ExpectUsageError({"boot-test", "--expect", "x", "stray"}, "unexpected argument 'stray'");
  // verify's one word is a VM's name (or a socket), not a stray argument.
  ExpectUsageError({"verify", "no-such-vm-here"}, "no running VM is called 'no-such-vm-here'");
}

// Found by the CLI fuzzer: Boost.Program_options looped forever formatting an error about an
// argument that contained one of its message placeholders.
TEST(PolicyCliTest, ArgumentsWithBoostPlaceholdersAreOrdinaryText) {
  testing::CommandOptions quick;
  quick.timeout = std::chrono::seconds(10);
  auto r = testing::RunKvmrun({"run", "-o%canonical_option%"}, quick);
  EXPECT_EQ(r.exit_code, 2) << "timed out: " << r.timed_out;
  EXPECT_NE(r.err.find("%canonical_option%"), std::string::npos) << r.err;
  r = testing::RunKvmrun({"policy", "--os", "linux", "--cpu", "max,%value%", "--format", "argv"},
                         quick);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = testing::RunKvmrun({"run", "--os", "linux", "--cpus", "%value%"}, quick);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("'%value%'"), std::string::npos) << r.err;
}

TEST(PolicyCliTest, ConflictingOptionsExitTwo) {
  ExpectUsageError({"policy", "--list", "--os", "linux"},
                   "--list and --os cannot be used together");
  ExpectUsageError({"policy", "--os", "linux", "--explain", "--format", "json"},
                   "--explain and --format cannot be used together");
}

TEST(CliTest, UnknownSubcommandExitsTwo) {
  ExpectUsageError({"frobnicate"},
                   "unknown subcommand 'frobnicate'; valid: run, policy, boot-test, timecheck, "
                   "verify, doctor, qmp");
  const auto r = RunKvmrun({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("Usage: kvmrun"), std::string::npos);
}

}  // namespace
}  // namespace kvmrun

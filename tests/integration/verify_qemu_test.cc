// `kvmrun verify` against QEMUs started by hand, not by kvmrun: each hand-made mismatch is
// caught with the exact timer and values, and a faithful start passes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kvmrun/clock_rendering.h"
#include "kvmrun/clock_verify.h"
#include "kvmrun/qemu_probe.h"
#include "kvmrun/qmp_commands.h"
#include "tests/support/qemu_binary.h"
#include "tests/support/qemu_process.h"
#include "tests/support/run_command.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;

// QEMU and the verifier share a time zone whose local time is not UTC, so the RTC base can be
// told apart.
const std::vector<std::string> kEnv = {"TZ=Asia/Kolkata"};

nlohmann::json Verify(const testing::ScopedQemu& vm, const std::string& os, int expected_exit) {
  testing::CommandOptions options;
  options.extra_env = kEnv;
  const auto r = testing::RunKvmrun(
      {"verify", "--qmp-socket", vm.socket_path(), "--os", os, "--json"}, options);
  EXPECT_EQ(r.exit_code, expected_exit) << r.out << r.err;
  return nlohmann::json::parse(r.out);
}

const nlohmann::json& CheckOf(const nlohmann::json& report, const std::string& timer) {
  for (const auto& check : report["checks"]) {
    if (check["timer"] == timer) return check;
  }
  static const nlohmann::json kMissing;
  ADD_FAILURE() << "no check for " << timer;
  return kMissing;
}

void ExpectOnlyMismatch(const nlohmann::json& report, const std::string& timer,
                        const std::string& expected, const std::string& observed) {
  for (const auto& check : report["checks"]) {
    if (check["timer"] == timer) {
      EXPECT_EQ(check["result"], "MISMATCH") << check;
      EXPECT_EQ(check["expected"], expected) << check;
      EXPECT_EQ(check["observed"], observed) << check;
    } else {
      EXPECT_NE(check["result"], "MISMATCH") << check;
    }
  }
}

class VerifyQemuTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VerifyQemuTest, AFaithfulHandStartPasses) {
  KVMRUN_REQUIRE_QEMU_LABELLED(qemu, GetParam());
  testing::ScopedQemu vm(qemu, {"-rtc", "base=utc,driftfix=slew", "-machine", "hpet=off"}, kEnv);
  const auto report = Verify(vm, "linux", 0);
  EXPECT_TRUE(report["ok"].get<bool>());
  EXPECT_EQ(CheckOf(report, "rtc-base")["result"], "ok");
  EXPECT_EQ(CheckOf(report, "pit-policy")["result"], "n/a");
  EXPECT_EQ(CheckOf(report, "accelerator")["observed"], "tcg");
}

TEST_P(VerifyQemuTest, LocaltimeBaseForALinuxPolicy) {
  KVMRUN_REQUIRE_QEMU_LABELLED(qemu, GetParam());
  testing::ScopedQemu vm(qemu, {"-rtc", "base=localtime,driftfix=slew", "-machine", "hpet=off"},
                         kEnv);
  ExpectOnlyMismatch(Verify(vm, "linux", 3), "rtc-base", "utc", "localtime");
}

TEST_P(VerifyQemuTest, NoDriftfixWhereThePolicyWantsSlew) {
  KVMRUN_REQUIRE_QEMU_LABELLED(qemu, GetParam());
  testing::ScopedQemu vm(qemu, {"-rtc", "base=localtime", "-machine", "hpet=off"}, kEnv);
  ExpectOnlyMismatch(Verify(vm, "windows-11", 3), "rtc-policy", "slew", "discard");
}

TEST_P(VerifyQemuTest, HpetOnWhereThePolicyWantsItOff) {
  KVMRUN_REQUIRE_QEMU_LABELLED(qemu, GetParam());
  testing::ScopedQemu vm(qemu, {"-rtc", "base=utc,driftfix=slew", "-machine", "hpet=on"}, kEnv);
  ExpectOnlyMismatch(Verify(vm, "linux", 3), "hpet", "off", "on");
}

TEST_P(VerifyQemuTest, ALaterRtcOptionOverridesTheFirst) {
  KVMRUN_REQUIRE_QEMU_LABELLED(qemu, GetParam());
  // QEMU merges the two: base from the second, driftfix from the first.
  testing::ScopedQemu vm(
      qemu, {"-rtc", "base=utc,driftfix=slew", "-rtc", "base=localtime", "-machine", "hpet=off"},
      kEnv);
  const auto report = Verify(vm, "linux", 3);
  ExpectOnlyMismatch(report, "rtc-base", "utc", "localtime");
  EXPECT_EQ(CheckOf(report, "rtc-policy")["observed"], "slew");
}

TEST_P(VerifyQemuTest, HumanReportAndUnreachableSocket) {
  KVMRUN_REQUIRE_QEMU_LABELLED(qemu, GetParam());
  testing::ScopedQemu vm(qemu, {"-machine", "hpet=on"}, kEnv);
  testing::CommandOptions options;
  options.extra_env = kEnv;
  auto r =
      testing::RunKvmrun({"verify", "--qmp-socket", vm.socket_path(), "--os", "other"}, options);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("clock verification: ok"), std::string::npos) << r.out;
  r = testing::RunKvmrun({"verify", "--qmp-socket", "/nonexistent.sock", "--os", "linux"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot connect to QMP socket /nonexistent.sock"), std::string::npos);
  r = testing::RunKvmrun({"verify", "--qmp-socket", vm.socket_path()});
  EXPECT_EQ(r.exit_code, 2);
}

INSTANTIATE_TEST_SUITE_P(EachQemu, VerifyQemuTest, ::testing::ValuesIn(testing::QemuLabels()));

// The readback library on its own: every field read, nothing unknown, on a real QEMU. The RTC
// moved between generations (7.2: /machine/unattached/device[N], reachable through
// /machine's rtc_state link; 10.0: the south bridge's "rtc" child, and no rtc_state link): the
// read-back finds it in both.
class ClockReadbackTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ClockReadbackTest, ReadsEveryTimerOfARealQemu) {
  KVMRUN_REQUIRE_QEMU_LABELLED(qemu, GetParam());
  testing::ScopedQemu vm(qemu, {"-smp", "2", "-rtc", "driftfix=slew"});
  QmpClient qmp(ConnectQmpSocket(vm.socket_path(), 5s));
  const ClockReadback r = ReadClockState(qmp, SystemHostClock());
  EXPECT_EQ(r.kvm_enabled.value, false);
  EXPECT_EQ(r.rtc_lost_tick_policy.value, "slew");
  EXPECT_EQ(r.rtc_lost_tick_policy.where.rfind("/machine/", 0), 0u);
  const QemuVersion version = qmp.greeting().version;
  if (version >= QemuVersion{10, 0, 0}) {
    EXPECT_TRUE(r.rtc_lost_tick_policy.where.ends_with("/rtc")) << r.rtc_lost_tick_policy.where;
    EXPECT_THROW(QomGet(qmp, "/machine", "rtc_state"), QmpError);
  } else {
    EXPECT_EQ(QomGet(qmp, "/machine", "rtc_state"), r.rtc_lost_tick_policy.where);
  }
  EXPECT_TRUE(r.rtc_time.value.has_value()) << r.rtc_time.error;
  EXPECT_EQ(r.pit_type.value, "isa-pit");
  EXPECT_EQ(r.hpet.value, true);
  ASSERT_EQ(r.cpus.size(), 2u);
  // Under TCG the vCPUs' clock flags (kvm-clock, Hyper-V) do not exist: they are not asked.
  EXPECT_FALSE(r.cpus[0].kvmclock.value.has_value());
  EXPECT_NE(r.cpus[1].hv_time.error.find("KVM"), std::string::npos) << r.cpus[1].hv_time.error;
}

// What a walk found is given to the next read of the same VM: the same values come back without
// the walk, and a layout that does not hold (a path that is another device now) is caught by
// its type and walked again.
TEST_P(ClockReadbackTest, AKnownLayoutIsCheckedNotTrusted) {
  KVMRUN_REQUIRE_QEMU_LABELLED(qemu, GetParam());
  testing::ScopedQemu vm(qemu, {"-rtc", "driftfix=slew", "-machine", "hpet=off"});
  QmpClient qmp(ConnectQmpSocket(vm.socket_path(), 5s));
  QomLayout layout;
  const ClockReadback walked = ReadClockState(qmp, SystemHostClock(), {&layout, Accel::kTcg});
  ASSERT_TRUE(layout.usable());
  EXPECT_EQ(layout.pit_type, "isa-pit");
  EXPECT_EQ(layout.hpet, "");
  EXPECT_EQ(walked.hpet.value, false);
  const QomLayout first = layout;
  const ClockReadback fast = ReadClockState(qmp, SystemHostClock(), {&layout, Accel::kTcg});
  EXPECT_EQ(layout, first);
  EXPECT_EQ(fast.rtc_lost_tick_policy.value, "slew");
  EXPECT_EQ(fast.rtc_lost_tick_policy.where, walked.rtc_lost_tick_policy.where);
  EXPECT_EQ(fast.pit_type.value, "isa-pit");
  EXPECT_EQ(fast.hpet.value, false);
  EXPECT_TRUE(fast.rtc_time.value.has_value());

  QomLayout wrong = first;
  std::swap(wrong.rtc, wrong.pit);  // each path now holds the other device
  const ClockReadback rewalked = ReadClockState(qmp, SystemHostClock(), {&wrong, Accel::kTcg});
  EXPECT_EQ(wrong, first) << "the walk found the devices where they are";
  EXPECT_EQ(rewalked.rtc_lost_tick_policy.value, "slew");
  QomLayout stale_hpet = first;
  stale_hpet.hpet = first.rtc;  // "an hpet" that is the RTC
  EXPECT_EQ(ReadClockState(qmp, SystemHostClock(), {&stale_hpet, Accel::kTcg}).hpet.value, false);
  EXPECT_EQ(stale_hpet, first);
}

INSTANTIATE_TEST_SUITE_P(EachQemu, ClockReadbackTest, ::testing::ValuesIn(testing::QemuLabels()));

// The probe of each real QEMU agrees with the shipped table for its version, so the tables
// cannot rot silently.
class QemuProbeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(QemuProbeTest, ProbeMatchesTheShippedTable) {
  KVMRUN_REQUIRE_QEMU_LABELLED(qemu, GetParam());
  auto runner = MakeProcessRunner();
  const QemuCapabilities probed = ProbeQemu(qemu, *runner);
  const std::string version =
      std::to_string(probed.version.major) + "." + std::to_string(probed.version.minor);
  QemuCapabilities shipped;
  ASSERT_NO_THROW(shipped = ShippedCapabilitiesFor(version))
      << "QEMU " << version << " has no shipped table: add one (and probe it here)";
  EXPECT_TRUE(probed.SameClockFeatures(shipped))
      << "probed " << CapabilitiesToJson(probed).dump() << "\nshipped "
      << CapabilitiesToJson(shipped).dump();
  EXPECT_FALSE(probed.default_machine.empty());
  EXPECT_GT(probed.machine_types.size(), 5u);
}

// Live capabilities (what `kvmrun verify` sees) agree with the probe on what a running VM shows.
TEST_P(QemuProbeTest, LiveCapabilitiesAgreeWithTheProbe) {
  KVMRUN_REQUIRE_QEMU_LABELLED(qemu, GetParam());
  auto runner = MakeProcessRunner();
  QemuCapabilities probed = ProbeQemu(qemu, *runner);
  testing::ScopedQemu vm(qemu, {});
  QmpClient qmp(ConnectQmpSocket(vm.socket_path(), 5s));
  QemuCapabilities live = CapabilitiesFromQmp(qmp);
  // -help flags are not visible to a running VM.
  live.no_hpet_flag = probed.no_hpet_flag;
  live.no_kvm_pit_reinjection_flag = probed.no_kvm_pit_reinjection_flag;
  EXPECT_TRUE(live.SameClockFeatures(probed));
}

INSTANTIATE_TEST_SUITE_P(EachQemu, QemuProbeTest, ::testing::ValuesIn(testing::QemuLabels()));

}  // namespace
}  // namespace kvmrun

#include "kvmrun/clock_rendering.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "kvmrun/policy_format.h"

namespace kvmrun {
namespace {

using Argv = std::vector<std::string>;

ClockRendering Render(GuestOs os, const char* version, Accel accel,
                      const ClockOverrides& overrides = {}) {
  return RenderClock(MakeClockPolicy(os, overrides), ShippedCapabilitiesFor(version), accel);
}

bool Contains(const Argv& argv, const std::string& arg) {
  return std::find(argv.begin(), argv.end(), arg) != argv.end();
}

// The seed (Nova bug 1011848): PIT without re-injection and the RTC slewed in UTC. QEMU 2.12
// still spells the PIT part -no-kvm-pit-reinjection; QEMU 3.0 removed it.
TEST(ClockRenderingTest, SeedCaseOnQemu212) {
  const ClockRendering r = Render(GuestOs::kLinux, "2.12", Accel::kKvm);
  EXPECT_EQ(r.argv,
            (Argv{"-rtc", "base=utc,driftfix=slew", "-no-kvm-pit-reinjection", "-no-hpet"}));
  EXPECT_TRUE(r.cpu_features.empty());
  EXPECT_EQ(ClockArgv(r, "host"), r.argv);
}

TEST(ClockRenderingTest, SeedIntentOnQemu72) {
  const ClockRendering r = Render(GuestOs::kLinux, "7.2", Accel::kKvm);
  EXPECT_EQ(r.argv, (Argv{"-rtc", "base=utc,driftfix=slew", "-global",
                          "kvm-pit.lost_tick_policy=discard", "-machine", "hpet=off"}));
  EXPECT_FALSE(Contains(r.argv, "-no-kvm-pit-reinjection"));
}

TEST(ClockRenderingTest, PitDelayUsesTheGlobalEvenWhereTheOldFlagExists) {
  const ClockRendering r = Render(GuestOs::kLinuxLegacy, "2.12", Accel::kKvm);
  EXPECT_TRUE(Contains(r.argv, "kvm-pit.lost_tick_policy=delay"));
  EXPECT_FALSE(Contains(r.argv, "-no-kvm-pit-reinjection"));
}

TEST(ClockRenderingTest, TcgOmitsKvmOnlySettingsWithNotes) {
  const ClockRendering r = Render(GuestOs::kWindows11, "7.2", Accel::kTcg);
  EXPECT_EQ(r.argv, (Argv{"-rtc", "base=localtime,driftfix=slew", "-machine", "hpet=off"}));
  EXPECT_TRUE(r.cpu_features.empty());
  const RenderedSetting& pit = r.Setting(ClockSetting::kPitPolicy);
  EXPECT_TRUE(pit.rendered.empty());
  EXPECT_TRUE(pit.satisfiable);
  EXPECT_EQ(pit.note, "TCG: the PIT is QEMU's isa-pit, which has no lost-tick policy");
  EXPECT_EQ(r.Setting(ClockSetting::kHvTime).note, "TCG: Hyper-V enlightenments need KVM");
  const auto notes = r.Notes();
  EXPECT_TRUE(
      Contains(notes, "pit-policy: TCG: the PIT is QEMU's isa-pit, which has no lost-tick policy"));
  EXPECT_TRUE(Contains(notes, "kvmclock: TCG: kvm-clock needs KVM"));
}

TEST(ClockRenderingTest, WindowsOnKvmAddsTheHypervClockToTheCpu) {
  const ClockRendering r = Render(GuestOs::kWindows11, "9.2", Accel::kKvm);
  EXPECT_EQ(r.argv, (Argv{"-rtc", "base=localtime,driftfix=slew", "-global",
                          "kvm-pit.lost_tick_policy=delay", "-machine", "hpet=off"}));
  EXPECT_EQ(r.cpu_features, (Argv{"hv-relaxed", "hv-vapic", "hv-spinlocks=0x1fff", "hv-time"}));
  const Argv full = ClockArgv(r, "host");
  ASSERT_GE(full.size(), 2u);
  EXPECT_EQ(full[full.size() - 2], "-cpu");
  EXPECT_EQ(full.back(), "host,hv-relaxed,hv-vapic,hv-spinlocks=0x1fff,hv-time");
}

TEST(ClockRenderingTest, Qemu9NeverGetsNoHpet) {
  for (const GuestOsInfo& info : GuestOsCatalog()) {
    for (Accel accel : kAllAccels) {
      for (const char* version : {"9.2"}) {
        const ClockRendering r = Render(info.os, version, accel);
        EXPECT_FALSE(Contains(r.argv, "-no-hpet")) << info.name;
        EXPECT_FALSE(Contains(r.argv, "-no-kvm-pit-reinjection")) << info.name;
      }
    }
  }
}

TEST(ClockRenderingTest, HpetSpellingFollowsTheVersion) {
  EXPECT_TRUE(Contains(Render(GuestOs::kLinux, "2.12", Accel::kKvm).argv, "-no-hpet"));
  EXPECT_TRUE(Contains(Render(GuestOs::kLinux, "5.2", Accel::kKvm).argv, "hpet=off"));
  EXPECT_FALSE(Contains(Render(GuestOs::kLinux, "5.2", Accel::kKvm).argv, "-no-hpet"));
  // HPET on: explicit where the machine property exists, QEMU's default before 5.2.
  EXPECT_TRUE(Contains(Render(GuestOs::kFreeBsd, "7.2", Accel::kKvm).argv, "hpet=on"));
  const ClockRendering old = Render(GuestOs::kFreeBsd, "2.12", Accel::kKvm);
  EXPECT_FALSE(Contains(old.argv, "-machine"));
  EXPECT_EQ(old.Setting(ClockSetting::kHpet).note,
            "the HPET is on by default and this QEMU has no -machine hpet=");
}

TEST(ClockRenderingTest, OverridesWinInTheArgv) {
  ClockOverrides o;
  o.pit_policy = PitTickPolicy::kDelay;
  o.rtc_policy = RtcTickPolicy::kDiscard;
  o.hpet = Toggle::kOn;
  o.kvmclock = Toggle::kOff;
  const ClockRendering r = Render(GuestOs::kLinux, "7.2", Accel::kKvm, o);
  EXPECT_EQ(r.argv, (Argv{"-rtc", "base=utc,driftfix=none", "-global",
                          "kvm-pit.lost_tick_policy=delay", "-machine", "hpet=on"}));
  EXPECT_EQ(r.cpu_features, (Argv{"kvmclock=off"}));
}

TEST(ClockRenderingTest, UnsatisfiableSettingsAreFlaggedNotDropped) {
  QemuCapabilities bare;  // a QEMU that can express nothing
  bare.version = {1, 0, 0};
  const ClockRendering r = RenderClock(MakeClockPolicy(GuestOs::kLinux), bare, Accel::kKvm);
  EXPECT_FALSE(r.Setting(ClockSetting::kRtcPolicy).satisfiable);
  EXPECT_FALSE(r.Setting(ClockSetting::kPitPolicy).satisfiable);
  EXPECT_FALSE(r.Setting(ClockSetting::kHpet).satisfiable);
  EXPECT_TRUE(r.Setting(ClockSetting::kRtcBase).satisfiable);
  EXPECT_EQ(r.argv, (Argv{"-rtc", "base=utc"}));
}

TEST(ClockRenderingTest, DefaultCpuModels) {
  EXPECT_EQ(DefaultCpuModel(Accel::kKvm), "host");
  EXPECT_EQ(DefaultCpuModel(Accel::kTcg), "max");
  EXPECT_EQ(CpuArgv("max", {}), (Argv{"-cpu", "max"}));
}

// Golden table: every catalog OS x {kvm, tcg} x every shipped QEMU version. The expected file is
// reviewed by hand; regenerate it with KVMRUN_UPDATE_GOLDEN=1 and read the diff.
std::string RenderEverything() {
  std::ostringstream out;
  for (const QemuCapabilities& caps : ShippedCapabilities()) {
    for (Accel accel : kAllAccels) {
      for (const GuestOsInfo& info : GuestOsCatalog()) {
        const ClockRendering r = RenderClock(MakeClockPolicy(info.os), caps, accel);
        out << caps.version.major << "." << caps.version.minor << " " << ToString(accel) << " "
            << info.name << ": " << ShellJoin(ClockArgv(r, DefaultCpuModel(accel))) << "\n";
      }
    }
  }
  return out.str();
}

TEST(ClockRenderingTest, GoldenTableForEveryOsAccelAndVersion) {
  const std::string path =
      std::string(KVMRUN_SOURCE_DIR) + "/tests/policy/testdata/render_golden.txt";
  const std::string actual = RenderEverything();
  if (std::getenv("KVMRUN_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path) << actual;
    GTEST_SKIP() << "rewrote " << path;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "missing " << path;
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(actual, expected.str());
}

}  // namespace
}  // namespace kvmrun

#include "kvmrun/clock_rendering.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>
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

// The seed (Nova bug 1011848): PIT without re-injection and the RTC slewed in UTC, its
// fragments exactly and in its order. QEMU 2.12 still spells the PIT part
// -no-kvm-pit-reinjection; QEMU 3.0 removed it.
TEST(ClockRenderingTest, SeedCaseOnQemu212) {
  const ClockRendering r = Render(GuestOs::kLinux, "2.12", Accel::kKvm);
  EXPECT_EQ(r.argv,
            (Argv{"-no-kvm-pit-reinjection", "-rtc", "base=utc,driftfix=slew", "-no-hpet"}));
  EXPECT_TRUE(r.cpu_features.empty());
  EXPECT_EQ(ClockArgv(r, "host"), r.argv);
}

TEST(ClockRenderingTest, SeedIntentOnQemu72) {
  const ClockRendering r = Render(GuestOs::kLinux, "7.2", Accel::kKvm);
  EXPECT_EQ(r.argv, (Argv{"-global", "kvm-pit.lost_tick_policy=discard", "-rtc",
                          "base=utc,driftfix=slew", "-machine", "hpet=off"}));
  EXPECT_FALSE(Contains(r.argv, "-no-kvm-pit-reinjection"));
  // base=utc is QEMU's default today, and written: it is the policy's decision.
  EXPECT_FALSE(r.Setting(ClockSetting::kRtcBase).qemu_default);
  EXPECT_EQ(r.Setting(ClockSetting::kRtcBase).rendered, "-rtc base=utc");
}

TEST(ClockRenderingTest, OtherKeepsQemuDefaultsAndEveryOsWritesItsDecisions) {
  // "other" stands for QEMU's defaults (PIT delay, HPET on, driftfix none, base utc, clock host,
  // kvmclock on, no Hyper-V): it renders to nothing at all on every QEMU.
  for (const QemuCapabilities& caps : ShippedCapabilities()) {
    const ClockRendering r = RenderClock(MakeClockPolicy(GuestOs::kOther), caps, Accel::kKvm);
    EXPECT_TRUE(r.argv.empty()) << ToString(caps.version);
    EXPECT_TRUE(r.cpu_features.empty());
    for (const RenderedSetting& s : r.settings) {
      EXPECT_TRUE(s.qemu_default) << ToString(s.setting);
      EXPECT_TRUE(s.note.empty()) << ToString(s.setting);
    }
  }
  // A catalog OS writes its PIT delay, QEMU's default or not (Windows XP, legacy Linux).
  const ClockRendering legacy = Render(GuestOs::kLinuxLegacy, "2.12", Accel::kKvm);
  EXPECT_TRUE(Contains(legacy.argv, "kvm-pit.lost_tick_policy=delay"));
  EXPECT_FALSE(legacy.Setting(ClockSetting::kPitPolicy).qemu_default);
  // HPET on is never written, even where decided: a QEMU built without the HPET refuses it.
  ClockOverrides on;
  on.hpet = Toggle::kOn;
  EXPECT_FALSE(Contains(Render(GuestOs::kLinux, "7.2", Accel::kKvm, on).argv, "hpet=on"));
}

TEST(ClockRenderingTest, HpetOnIsLeftToQemuAndAQemuWithoutAnHpetIsSaid) {
  ClockOverrides on;
  on.hpet = Toggle::kOn;
  EXPECT_FALSE(Contains(Render(GuestOs::kLinux, "7.2", Accel::kKvm, on).argv, "-machine"));
  QemuCapabilities rhel = ShippedCapabilitiesFor("7.2");
  rhel.hpet_device = false;  // RHEL-family builds
  const ClockRendering off = RenderClock(MakeClockPolicy(GuestOs::kLinux), rhel, Accel::kKvm);
  EXPECT_FALSE(Contains(off.argv, "-machine"));
  EXPECT_TRUE(off.Setting(ClockSetting::kHpet).satisfiable);
  EXPECT_EQ(off.Setting(ClockSetting::kHpet).note,
            "this QEMU is built without an HPET: there is none to turn off");
  const ClockRendering want = RenderClock(MakeClockPolicy(GuestOs::kLinux, on), rhel, Accel::kKvm);
  EXPECT_FALSE(want.Setting(ClockSetting::kHpet).satisfiable);
  EXPECT_FALSE(Contains(want.argv, "-machine"));
}

TEST(ClockRenderingTest, RtcClockIsWrittenOnlyWhenNotHost) {
  ClockOverrides o;
  o.rtc_clock = RtcClock::kRt;
  EXPECT_EQ(Render(GuestOs::kLinux, "7.2", Accel::kTcg, o).argv,
            (Argv{"-rtc", "base=utc,clock=rt,driftfix=slew", "-machine", "hpet=off"}));
  EXPECT_EQ(Render(GuestOs::kWindows11, "7.2", Accel::kTcg, o).argv,
            (Argv{"-rtc", "base=localtime,clock=rt,driftfix=slew", "-machine", "hpet=off"}));
}

TEST(ClockRenderingTest, TcgOmitsKvmOnlySettingsWithNotes) {
  const ClockRendering r = Render(GuestOs::kWindows11, "7.2", Accel::kTcg);
  EXPECT_EQ(r.argv, (Argv{"-rtc", "base=localtime,driftfix=slew", "-machine", "hpet=off"}));
  EXPECT_TRUE(r.cpu_features.empty());
  EXPECT_EQ(r.Setting(ClockSetting::kHyperv).note,
            "TCG: Hyper-V enlightenments need KVM; not written: hv-relaxed,hv-vapic,hv-spinlocks,"
            "hv-vpindex,hv-runtime,hv-reset,hv-frequencies,hv-tlbflush,hv-synic,hv-stimer,hv-ipi");
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

TEST(ClockRenderingTest, WindowsOnKvmAddsTheHypervClockAndSetToTheCpu) {
  const ClockRendering r = Render(GuestOs::kWindows11, "9.2", Accel::kKvm);
  EXPECT_EQ(r.argv, (Argv{"-global", "kvm-pit.lost_tick_policy=discard", "-rtc",
                          "base=localtime,driftfix=slew", "-machine", "hpet=off"}));
  const Argv features = {"hv-time",     "hv-relaxed", "hv-vapic",  "hv-spinlocks=0x1fff",
                         "hv-vpindex",  "hv-runtime", "hv-reset",  "hv-frequencies",
                         "hv-tlbflush", "hv-synic",   "hv-stimer", "hv-ipi"};
  EXPECT_EQ(r.cpu_features, features);
  EXPECT_EQ(r.Setting(ClockSetting::kHvTime).rendered, "-cpu ...,hv-time");
  EXPECT_TRUE(r.Setting(ClockSetting::kHyperv).note.empty());
  const Argv full = ClockArgv(r, "host");
  ASSERT_GE(full.size(), 2u);
  EXPECT_EQ(full[full.size() - 2], "-cpu");
  EXPECT_EQ(full.back().substr(0, 21), "host,hv-time,hv-relax");
}

TEST(ClockRenderingTest, HypervDropsWhatTheQemuLacksAndWhatWouldMissARequirement) {
  // QEMU 2.12 has no hv-tlbflush (3.0) or hv-ipi (3.1): named, the rest written.
  const ClockRendering old = Render(GuestOs::kWindows10, "2.12", Accel::kKvm);
  EXPECT_FALSE(Contains(old.cpu_features, "hv-ipi"));
  EXPECT_TRUE(Contains(old.cpu_features, "hv-stimer"));
  EXPECT_TRUE(old.Setting(ClockSetting::kHyperv).satisfiable);
  EXPECT_EQ(old.Setting(ClockSetting::kHyperv).note,
            "this QEMU has no hv-tlbflush,hv-ipi: not written");
  // Without hv-time, hv-stimer would make QEMU refuse to start: left out and said.
  ClockOverrides no_clock;
  no_clock.hv_time = Toggle::kOff;
  const ClockRendering r = Render(GuestOs::kWindows11, "7.2", Accel::kKvm, no_clock);
  EXPECT_FALSE(Contains(r.cpu_features, "hv-time"));
  EXPECT_FALSE(Contains(r.cpu_features, "hv-stimer"));
  EXPECT_TRUE(Contains(r.cpu_features, "hv-synic"));
  EXPECT_EQ(r.Setting(ClockSetting::kHyperv).note,
            "not written, a requirement is off: hv-stimer (needs hv-time)");
  // A host whose KVM cannot set VP_INDEX (PVM): hv-vpindex and all that needs it left out,
  // named with the capability; the rest written.
  const ClockRendering pvm =
      RenderClock(MakeClockPolicy(GuestOs::kWindows11), ShippedCapabilitiesFor("7.2"), Accel::kKvm,
                  {{"hv-vpindex", "KVM_CAP_HYPERV_VP_INDEX"}});
  EXPECT_FALSE(Contains(pvm.cpu_features, "hv-vpindex"));
  EXPECT_FALSE(Contains(pvm.cpu_features, "hv-synic"));
  EXPECT_TRUE(Contains(pvm.cpu_features, "hv-relaxed"));
  EXPECT_TRUE(Contains(pvm.cpu_features, "hv-time"));
  EXPECT_EQ(pvm.Setting(ClockSetting::kHyperv).note,
            "this host's KVM cannot give hv-vpindex (KVM_CAP_HYPERV_VP_INDEX): not written; not "
            "written, a requirement is off: hv-tlbflush (needs hv-vpindex),hv-synic (needs "
            "hv-vpindex),hv-stimer (needs hv-vpindex),hv-ipi (needs hv-vpindex)");
  // A QEMU with no Hyper-V at all cannot express the set.
  QemuCapabilities none = ShippedCapabilitiesFor("7.2");
  none.hv_properties.clear();
  const ClockRendering bare = RenderClock(MakeClockPolicy(GuestOs::kWindows11), none, Accel::kKvm);
  EXPECT_FALSE(bare.Setting(ClockSetting::kHyperv).satisfiable);
  EXPECT_FALSE(bare.Setting(ClockSetting::kHvTime).satisfiable);
  EXPECT_TRUE(bare.cpu_features.empty());
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
  EXPECT_EQ(Render(GuestOs::kLinux, "2.12", Accel::kKvm).Setting(ClockSetting::kHpet).note,
            "the pre-5.2 spelling of -machine hpet=off");
}

TEST(ClockRenderingTest, OverridesWinInTheArgv) {
  ClockOverrides o;
  o.pit_policy = PitTickPolicy::kDelay;
  o.rtc_policy = RtcTickPolicy::kDiscard;
  o.hpet = Toggle::kOn;
  o.kvmclock = Toggle::kOff;
  o.rtc_base = RtcBase::kLocaltime;
  const ClockRendering r = Render(GuestOs::kLinux, "7.2", Accel::kKvm, o);
  EXPECT_EQ(r.argv, (Argv{"-global", "kvm-pit.lost_tick_policy=delay", "-rtc",
                          "base=localtime,driftfix=none"}));
  EXPECT_EQ(r.cpu_features, (Argv{"kvmclock=off"}));
}

TEST(ClockRenderingTest, UnsatisfiableSettingsAreFlaggedNotDropped) {
  QemuCapabilities bare;  // a QEMU that can express nothing, but has an HPET
  bare.version = {1, 0, 0};
  bare.hpet_device = true;
  ClockOverrides localtime;
  localtime.rtc_base = RtcBase::kLocaltime;
  const ClockRendering r =
      RenderClock(MakeClockPolicy(GuestOs::kLinux, localtime), bare, Accel::kKvm);
  EXPECT_FALSE(r.Setting(ClockSetting::kRtcPolicy).satisfiable);
  EXPECT_FALSE(r.Setting(ClockSetting::kPitPolicy).satisfiable);
  EXPECT_FALSE(r.Setting(ClockSetting::kHpet).satisfiable);
  EXPECT_TRUE(r.Setting(ClockSetting::kRtcBase).satisfiable);
  EXPECT_EQ(r.argv, (Argv{"-rtc", "base=localtime"}));
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

// Command lines compared by meaning: an older spelling of the same policy is the same VM.
TEST(ClockMeaningTest, SpellingsAndOrderDoNotMatterValuesDo) {
  const Argv old_spelling = {"qemu",
                             "-m",
                             "512",
                             "-rtc",
                             "driftfix=slew",
                             "-global",
                             "kvm-pit.lost_tick_policy=discard",
                             "-machine",
                             "hpet=off",
                             "-cpu",
                             "max",
                             "-kernel",
                             "k"};
  const Argv new_spelling = {"qemu",
                             "-m",
                             "512",
                             "-global",
                             "kvm-pit.lost_tick_policy=discard",
                             "-rtc",
                             "base=utc,driftfix=slew",
                             "-machine",
                             "hpet=off",
                             "-cpu",
                             "max",
                             "-kernel",
                             "k"};
  EXPECT_EQ(ClockMeaningOf(old_spelling), ClockMeaningOf(new_spelling));
  EXPECT_EQ(WithoutClockOptions(old_spelling), WithoutClockOptions(new_spelling));
  EXPECT_EQ(WithoutClockOptions(new_spelling),
            (Argv{"qemu", "-m", "512", "-cpu", "max", "-kernel", "k"}));
  EXPECT_EQ(WithoutClockOptions({"-cpu", "host,hv-time,kvmclock=off,+sse4.2"}),
            (Argv{"-cpu", "host,+sse4.2"}));
  Argv slewless = new_spelling;
  slewless[6] = "base=utc";
  EXPECT_FALSE(ClockMeaningOf(slewless) == ClockMeaningOf(new_spelling));
  EXPECT_EQ(ClockMeaningOf({"-no-kvm-pit-reinjection"}).pit, "discard");
  EXPECT_EQ(ClockMeaningOf({"-cpu", "host,hv-time=on,kvmclock=off"}).hyperv,
            (std::set<std::string>{"hv-time"}));
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

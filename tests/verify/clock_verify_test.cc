#include "kvmrun/clock_verify.h"

#include <gtest/gtest.h>

namespace kvmrun {
namespace {

constexpr std::time_t kNow = 1795755600;  // 2026-11-27 02:20:00 UTC

// A host at UTC+05:30 unless told otherwise.
HostClock Offset(long seconds) {
  return {[seconds](std::time_t) { return seconds; }, [] { return kNow; }};
}

std::tm TmAt(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  return tm;
}

// What a correct Linux VM under KVM reads back.
ClockReadback GoodKvmLinux() {
  ClockReadback r;
  r.kvm_enabled.value = true;
  r.rtc_lost_tick_policy = {"slew", "", "/machine/unattached/device[8]"};
  r.rtc_time.value = TmAt(kNow + 1);
  r.host_time = kNow;
  r.pit_type = {"kvm-pit", "", "/machine/unattached/device[2]"};
  r.pit_lost_tick_policy.value = "discard";
  r.hpet.value = false;
  for (int i = 0; i < 2; ++i) {
    CpuClockFlags cpu;
    cpu.qom_path = "/machine/unattached/device[" + std::to_string(i) + "]";
    cpu.hv_time.value = false;
    cpu.kvmclock.value = true;
    cpu.hyperv.value = "none";
    r.cpus.push_back(cpu);
  }
  return r;
}

ClockReport Compare(GuestOs os, Accel accel, const ClockReadback& r, long offset = 19800,
                    const ClockOverrides& o = {}) {
  const ClockPolicy policy = MakeClockPolicy(os, o);
  return CompareClock(policy, RenderClock(policy, ShippedCapabilitiesFor("7.2"), accel), r,
                      Offset(offset));
}

const ClockCheck& Find(const ClockReport& report, const std::string& timer) {
  for (const ClockCheck& c : report.checks) {
    if (c.timer == timer) return c;
  }
  throw std::runtime_error("no check " + timer);
}

TEST(CompareClockTest, AGoodKvmLinuxVmIsAllOk) {
  const ClockReport report = Compare(GuestOs::kLinux, Accel::kKvm, GoodKvmLinux());
  EXPECT_TRUE(report.ok());
  for (const ClockCheck& c : report.checks) {
    EXPECT_EQ(c.outcome, CheckOutcome::kOk) << c.timer << ": " << c.observed << " " << c.detail;
  }
  EXPECT_EQ(Find(report, "pit-policy").observed, "kvm-pit discard");
  EXPECT_EQ(Find(report, "kvmclock").detail, "2 vCPU(s)");
}

TEST(CompareClockTest, EachWrongTimerIsItsOwnMismatch) {
  ClockReadback r = GoodKvmLinux();
  r.pit_lost_tick_policy.value = "delay";
  r.rtc_lost_tick_policy.value = "discard";
  r.hpet.value = true;
  r.kvm_enabled.value = false;
  const ClockReport report = Compare(GuestOs::kLinux, Accel::kKvm, r);
  EXPECT_FALSE(report.ok());
  std::vector<std::string> mismatched;
  for (const ClockCheck* c : report.Mismatches())
    mismatched.push_back(c->timer + ": " + c->expected + " -> " + c->observed);
  EXPECT_EQ(mismatched, (std::vector<std::string>{
                            "accelerator: kvm -> tcg", "rtc-policy: slew -> discard",
                            "pit-policy: kvm-pit discard -> kvm-pit delay", "hpet: off -> on"}));
}

TEST(CompareClockTest, WindowsNeedsHvTimeOnEveryVcpuAndLocaltime) {
  ClockReadback r = GoodKvmLinux();
  r.rtc_time.value = TmAt(kNow + 19800);
  r.pit_lost_tick_policy.value = "delay";
  r.cpus[0].hv_time.value = true;
  const ClockReport report = Compare(GuestOs::kWindows11, Accel::kKvm, r);
  EXPECT_EQ(Find(report, "rtc-base").observed, "localtime");
  EXPECT_EQ(Find(report, "rtc-base").outcome, CheckOutcome::kOk);
  const ClockCheck& hv = Find(report, "hv-time");
  EXPECT_EQ(hv.observed, "mixed");
  EXPECT_EQ(hv.outcome, CheckOutcome::kMismatch);
}

TEST(CompareClockTest, TheHypervSetIsComparedAsWrittenForThisQemu) {
  ClockReadback r = GoodKvmLinux();
  r.rtc_time.value = TmAt(kNow + 19800);
  const std::string full =
      "hv-relaxed,hv-vapic,hv-spinlocks=0x1fff,hv-vpindex,hv-runtime,hv-reset,hv-frequencies,"
      "hv-tlbflush,hv-synic,hv-stimer,hv-ipi";
  for (CpuClockFlags& cpu : r.cpus) {
    cpu.hv_time.value = true;
    cpu.hyperv.value = full;
  }
  EXPECT_EQ(Find(Compare(GuestOs::kWindows11, Accel::kKvm, r), "hyperv").outcome,
            CheckOutcome::kOk);
  // A VM started without hv-stimer (by hand, say) is a mismatch naming both sets.
  r.cpus[1].hyperv.value = full.substr(0, full.find(",hv-stimer")) + ",hv-ipi";
  const ClockReport report = Compare(GuestOs::kWindows11, Accel::kKvm, r);
  const ClockCheck& hv = Find(report, "hyperv");
  EXPECT_EQ(hv.outcome, CheckOutcome::kMismatch);
  EXPECT_EQ(hv.expected, full);
  EXPECT_EQ(hv.observed, "mixed");
  // Linux wants none; Vista wants its smaller set.
  EXPECT_EQ(Find(Compare(GuestOs::kLinux, Accel::kKvm, GoodKvmLinux()), "hyperv").expected, "none");
  EXPECT_EQ(Find(Compare(GuestOs::kWindowsVista, Accel::kKvm, r), "hyperv").expected,
            "hv-relaxed,hv-vapic,hv-spinlocks=0x1fff,hv-vpindex,hv-runtime,hv-reset,"
            "hv-frequencies,hv-tlbflush");
}

TEST(CompareClockTest, WhatTheHostCannotGiveIsNotApplicableWithTheReason) {
  ClockReadback r = GoodKvmLinux();
  r.rtc_time.value = TmAt(kNow + 19800);
  const ClockPolicy policy = MakeClockPolicy(GuestOs::kWindows11);
  HypervGaps none;
  for (std::string_view property : KnownHypervProperties()) {
    none.emplace(property, "KVM_CAP_HYPERV");
  }
  const ClockReport report =
      CompareClock(policy, RenderClock(policy, ShippedCapabilitiesFor("7.2"), Accel::kKvm, none), r,
                   Offset(19800));
  const ClockCheck& hv = Find(report, "hv-time");
  EXPECT_EQ(hv.outcome, CheckOutcome::kNotApplicable);
  EXPECT_EQ(hv.expected, "on (cannot)");
  EXPECT_EQ(hv.detail, "this host's KVM cannot give hv-time (KVM_CAP_HYPERV): not written");
  EXPECT_EQ(Find(report, "hyperv").outcome, CheckOutcome::kOk);  // none written, none found
  // On a host that can, the same readback is a mismatch.
  EXPECT_EQ(Find(Compare(GuestOs::kWindows11, Accel::kKvm, r), "hv-time").outcome,
            CheckOutcome::kMismatch);
}

TEST(CompareClockTest, TcgMakesKvmOnlyTimersNotApplicable) {
  ClockReadback r = GoodKvmLinux();
  r.kvm_enabled.value = false;
  r.pit_type.value = "isa-pit";
  r.pit_lost_tick_policy = {};
  r.cpus[0].kvmclock.value = false;
  const ClockReport report = Compare(GuestOs::kWindows10, Accel::kTcg, r, 0);
  EXPECT_TRUE(report.ok());
  const ClockCheck& pit = Find(report, "pit-policy");
  EXPECT_EQ(pit.outcome, CheckOutcome::kNotApplicable);
  EXPECT_EQ(pit.detail, "TCG: isa-pit has no lost-tick policy");
  EXPECT_EQ(Find(report, "hv-time").outcome, CheckOutcome::kNotApplicable);
  EXPECT_EQ(Find(report, "kvmclock").outcome, CheckOutcome::kNotApplicable);
}

TEST(CompareClockTest, IsaPitUnderKvmIsAMismatch) {
  ClockReadback r = GoodKvmLinux();
  r.pit_type.value = "isa-pit";
  const ClockReport report = Compare(GuestOs::kLinux, Accel::kKvm, r);
  const ClockCheck& pit = Find(report, "pit-policy");
  EXPECT_EQ(pit.outcome, CheckOutcome::kMismatch);
  EXPECT_EQ(pit.observed, "isa-pit (no lost-tick policy)");
}

TEST(CompareClockTest, UnreadableValuesAreUnknownWithTheirReasonNotMismatches) {
  ClockReadback r = GoodKvmLinux();
  r.rtc_lost_tick_policy = {std::nullopt, "GenericError: Property 'lost_tick_policy' not found",
                            "/machine/x"};
  r.rtc_time = {std::nullopt, "DeviceNotFound: no rtc-time", ""};
  r.pit_type = {std::nullopt, "no kvm-pit or isa-pit device under /machine", ""};
  r.cpus.clear();
  r.cpus_error = "CommandNotFound: query-cpus-fast";
  const ClockReport report = Compare(GuestOs::kLinux, Accel::kKvm, r);
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(Find(report, "rtc-policy").outcome, CheckOutcome::kUnknown);
  EXPECT_EQ(Find(report, "rtc-policy").detail,
            "GenericError: Property 'lost_tick_policy' not found");
  EXPECT_EQ(Find(report, "rtc-base").outcome, CheckOutcome::kUnknown);
  EXPECT_EQ(Find(report, "pit-policy").detail, "no kvm-pit or isa-pit device under /machine");
  EXPECT_EQ(Find(report, "kvmclock").detail, "CommandNotFound: query-cpus-fast");
}

TEST(CompareClockTest, RtcBaseOnAUtcHostIsIndistinguishable) {
  const ClockReport report = Compare(GuestOs::kLinux, Accel::kKvm, GoodKvmLinux(), 0);
  const ClockCheck& base = Find(report, "rtc-base");
  EXPECT_EQ(base.outcome, CheckOutcome::kIndistinguishable);
  EXPECT_EQ(base.observed, "utc = localtime");
}

TEST(CompareClockTest, RtcBaseFarFromBothIsAFixedDate) {
  ClockReadback r = GoodKvmLinux();
  r.rtc_time.value = TmAt(kNow - 86400 * 365);
  const ClockReport report = Compare(GuestOs::kLinux, Accel::kKvm, r);
  const ClockCheck& base = Find(report, "rtc-base");
  EXPECT_EQ(base.outcome, CheckOutcome::kMismatch);
  EXPECT_EQ(base.observed, "other");
}

TEST(CompareClockTest, RtcBaseAcrossADayAndYearBoundary) {
  // Host at 2026-12-31 23:59:58 UTC, +05:30: local time is already next year.
  const std::time_t host = 1798761598;
  ClockReadback r = GoodKvmLinux();
  r.host_time = host;
  r.rtc_time.value = TmAt(host + 19800 + 3);
  const ClockReport report = Compare(GuestOs::kWindows7, Accel::kKvm, r);
  const ClockCheck& base = Find(report, "rtc-base");
  EXPECT_EQ(base.observed, "localtime");
  EXPECT_EQ(base.outcome, CheckOutcome::kOk);
}

TEST(CompareClockTest, RtcBaseAcrossADstChange) {
  // The offset changes from +1h to +2h one second after the read; QEMU took local time at the
  // new offset. A fixed offset at the read instant alone would call this "other".
  const std::time_t host = kNow;
  HostClock dst{[](std::time_t t) { return t > kNow ? 7200L : 3600L; }, [] { return kNow; }};
  ClockReadback r = GoodKvmLinux();
  r.rtc_time.value = TmAt(host + 7200 + 1);
  const ClockPolicy policy = MakeClockPolicy(GuestOs::kWindows11);
  const ClockReport report =
      CompareClock(policy, RenderClock(policy, ShippedCapabilitiesFor("7.2"), Accel::kKvm), r, dst);
  EXPECT_EQ(Find(report, "rtc-base").observed, "localtime");
}

TEST(ClockReportFormatTest, TableAndJson) {
  ClockReadback r = GoodKvmLinux();
  r.hpet.value = true;
  const ClockReport report = Compare(GuestOs::kLinux, Accel::kKvm, r);
  const std::string table = FormatClockReport(report);
  EXPECT_EQ(table.rfind("TIMER", 0), 0u);
  EXPECT_NE(table.find("clock verification: 1 mismatch(es)"), std::string::npos);
  const nlohmann::json j = ClockReportToJson(report);
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_EQ(j["checks"].size(), 8u);
  EXPECT_EQ(ClockMismatchError(report).what(),
            std::string("clock verification failed: hpet expected off, observed on"));
}

}  // namespace
}  // namespace kvmrun

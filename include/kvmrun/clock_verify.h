// Proving that a running VM has its clock policy: read the timer state back over QMP, then
// compare it, timer by timer, with the policy as rendered for that QEMU and accelerator.
//
// Only the running VM tells the truth: QEMU accepts `-global kvm-pit.lost_tick_policy=...`
// under TCG and ignores it, and a later `-rtc` on the command line overrides an earlier one.
// Reading is split from comparing so the comparison is pure and testable with recorded
// read-backs; every read QEMU cannot answer is kept as "unknown" with the reason.
#ifndef KVMRUN_CLOCK_VERIFY_H_
#define KVMRUN_CLOCK_VERIFY_H_

#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "kvmrun/clock_rendering.h"
#include "kvmrun/error.h"
#include "kvmrun/qmp_client.h"

namespace kvmrun {

// A value read from the VM, or why it could not be read.
template <typename T>
struct Observed {
  std::optional<T> value;
  std::string error;  // set when value is empty
  std::string where;  // the QOM path (or command) it came from
};

struct CpuClockFlags {
  std::string qom_path;
  Observed<bool> hv_time;
  Observed<bool> kvmclock;
  // The Hyper-V enlightenments on besides hv-time, in HypervFeatures(kFull) order as written
  // ("hv-relaxed,hv-spinlocks=0x1fff,..."), "none" when none; read under KVM only.
  Observed<std::string> hyperv;
};

struct ClockReadback {
  Observed<bool> kvm_enabled;
  Observed<std::string> rtc_lost_tick_policy;  // where = the RTC's QOM path
  Observed<std::tm> rtc_time;                  // the guest RTC's broken-down time
  std::time_t host_time = 0;                   // host clock (UTC seconds) when rtc_time was read
  Observed<std::string> pit_type;              // "kvm-pit" or "isa-pit"; where = its path
  Observed<std::string> pit_lost_tick_policy;  // kvm-pit only
  Observed<bool> hpet;                         // an hpet device exists
  std::vector<CpuClockFlags> cpus;
  std::string cpus_error;  // why the vCPUs could not be listed
};

// The host's clock as verification needs it: `now()` is the wall clock (UTC seconds), and
// `utc_offset(t)` the local time's offset from UTC in seconds at instant t, in the time zone
// QEMU computes `base=localtime` with (its TZ).
struct HostClock {
  std::function<long(std::time_t)> utc_offset;
  std::function<std::time_t()> now;
};
HostClock SystemHostClock();  // this process's TZ

// Where the timer devices sit in one VM's QOM tree. Finding them takes a walk of the tree (40
// to 60 qom-list calls, each about a millisecond of QEMU's time); the same QEMU binary with the
// same command line builds the same tree, so what a walk found can be given to the next
// ReadClockState of such a VM, which then asks for those paths directly and checks each one's
// QOM "type" (an HPET the walk found absent: /machine's hpet property must say off). Anything
// that does not match sends it back to the walk. Launcher keeps these in its probe cache.
struct QomLayout {
  std::string rtc;       // the mc146818rtc's path
  std::string pit;       // the kvm-pit's or isa-pit's path
  std::string pit_type;  // "kvm-pit" or "isa-pit"
  std::string hpet;      // the hpet's path; empty when the walk proved there is none
  bool usable() const { return !rtc.empty() && !pit.empty() && !pit_type.empty(); }
  friend bool operator==(const QomLayout&, const QomLayout&) = default;
};
nlohmann::json QomLayoutToJson(const QomLayout& layout);
// An unusable (empty) layout for JSON of another shape.
QomLayout QomLayoutFromJson(const nlohmann::json& json);

struct ReadbackHints {
  // What an earlier walk found for this VM's binary and command line (nullptr: walk). On
  // return, what this read found: a caller that keeps layouts stores it when it changed.
  QomLayout* layout = nullptr;
  // The accelerator the VM was started with, when known: under TCG the per-vCPU flags (which
  // need KVM) are not read, and everything else goes in one pipelined batch.
  std::optional<Accel> expected_accel;
};

// Reads everything over `qmp`, the RTC stamped with `host.now()`. Individual failures are
// recorded, not thrown; a lost connection (QmpDisconnected) propagates. With a usable layout
// and the accelerator known, TCG costs one round trip of six commands.
ClockReadback ReadClockState(QmpClient& qmp, const HostClock& host,
                             const ReadbackHints& hints = {});

enum class CheckOutcome {
  kOk,
  kMismatch,
  kNotApplicable,      // the setting does not exist for this accelerator (e.g. TCG's isa-pit)
  kUnknown,            // the VM could not be asked
  kIndistinguishable,  // e.g. RTC base when host local time equals UTC
};
std::string_view ToString(CheckOutcome outcome);

struct ClockCheck {
  std::string timer;     // "accelerator", "rtc-base", "rtc-policy", "pit-policy", "hpet", ...
  std::string expected;  // in QEMU's terms
  std::string observed;
  CheckOutcome outcome = CheckOutcome::kUnknown;
  std::string detail;  // why n/a or unknown, where it was read
};

struct ClockReport {
  std::vector<ClockCheck> checks;

  bool ok() const;  // no mismatch (unknowns are reported, not failures)
  std::vector<const ClockCheck*> Mismatches() const;
};

// The RTC's base within this many seconds of host UTC or local time counts as a match.
inline constexpr long kRtcBaseToleranceSeconds = 5;

// Pure: the expected values come from `policy` as rendered in `rendering` (whose accel is the
// one the VM should have), the observed ones from `readback`.
ClockReport CompareClock(const ClockPolicy& policy, const ClockRendering& rendering,
                         const ClockReadback& readback, const HostClock& host);

// "TIMER  EXPECTED  OBSERVED  RESULT  DETAIL" and a verdict line.
std::string FormatClockReport(const ClockReport& report);
// One line: "clock verification: ok (5 ok, 1 indistinguishable, 3 n/a)", or with the number
// of mismatches.
std::string SummarizeClockReport(const ClockReport& report);
nlohmann::json ClockReportToJson(const ClockReport& report);

// Thrown by the launcher's gate (--verify=enforce) when the VM does not have its policy.
class ClockMismatchError : public Error {
 public:
  explicit ClockMismatchError(ClockReport report);
  const ClockReport& report() const { return report_; }

 private:
  ClockReport report_;
};

}  // namespace kvmrun

#endif  // KVMRUN_CLOCK_VERIFY_H_

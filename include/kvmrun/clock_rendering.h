// Turning a ClockPolicy into QEMU arguments for one QEMU and one accelerator. Pure.
//
// The same intent is spelt differently per QEMU version (PIT discard is
// -no-kvm-pit-reinjection before 3.0 and -global kvm-pit.lost_tick_policy=discard after; HPET
// off is -no-hpet before 5.2 and -machine hpet=off from 5.2), and some settings do not exist
// under TCG (there is no kvm-pit, no Hyper-V, no kvm-clock). Every setting that renders to
// nothing says why in a note, so nothing is dropped silently.
//
// Every setting the policy decides for a guest OS is written, even where it equals QEMU's
// default today: the RTC base and lost-tick policy (`-rtc base=utc,driftfix=slew`), the PIT's
// lost-tick policy under KVM (`kvm-pit.lost_tick_policy=delay` too), kvm-clock where the policy
// turns it off, HPET off, the Hyper-V set. The argv states the decision, survives a QEMU that
// changes a default, and matches what libvirt, Nova and Proxmox write. Two exceptions: a value
// some QEMU builds reject is not written (hpet=on: a QEMU built without the HPET exits; HPET on
// is the default where the device exists), and the `other` OS stands for QEMU's defaults, so
// it writes only what the user overrode (RenderedSetting::qemu_default marks what is left).
// verify reads every value back from the running VM either way.
#ifndef KVMRUN_CLOCK_RENDERING_H_
#define KVMRUN_CLOCK_RENDERING_H_

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/clock_policy.h"
#include "kvmrun/qemu_capabilities.h"

namespace kvmrun {

// How one setting of the policy was rendered.
struct RenderedSetting {
  ClockSetting setting = ClockSetting::kRtcBase;
  std::string value;        // the policy's value, e.g. "discard"
  std::string rendered;     // its share of the command line, e.g. "-machine hpet=off"; may be empty
  std::string note;         // why `rendered` is empty or spelt unusually; empty when plain
  bool satisfiable = true;  // false when this QEMU cannot express the value at all
  bool qemu_default = false;  // `rendered` is empty because the value is QEMU's default

  friend bool operator==(const RenderedSetting&, const RenderedSetting&) = default;
};

struct ClockRendering {
  Accel accel = Accel::kKvm;
  std::vector<RenderedSetting> settings;  // in kAllClockSettings order
  std::vector<std::string> argv;          // every clock argument except -cpu
  // Added to the CPU model: "hv-time", the Hyper-V set, "kvmclock=off".
  std::vector<std::string> cpu_features;

  // Every non-empty note, prefixed with its setting: "pit-policy: TCG has no kvm-pit ...".
  std::vector<std::string> Notes() const;
  const RenderedSetting& Setting(ClockSetting setting) const;
};

// Hyper-V CPU properties the host's KVM cannot give, each with why ("KVM_CAP_HYPERV_VP_INDEX").
using HypervGaps = std::map<std::string, std::string>;

// `host_gaps` (under KVM) are left out like properties the QEMU lacks, with their own note.
ClockRendering RenderClock(const ClockPolicy& policy, const QemuCapabilities& caps, Accel accel,
                           const HypervGaps& host_gaps = {});

// The CPU model kvmrun uses by default: "host" under KVM, "max" under TCG (-cpu host fails
// under TCG).
std::string_view DefaultCpuModel(Accel accel);

// {"-cpu", "MODEL[,FEATURE...]"}.
std::vector<std::string> CpuArgv(std::string_view model, const std::vector<std::string>& features);

// The full clock fragment: rendering.argv, then CpuArgv(cpu_model, cpu_features) when the policy
// adds CPU features. What `kvmrun policy --format argv` prints.
std::vector<std::string> ClockArgv(const ClockRendering& rendering, std::string_view cpu_model);

// What QEMU will do with its clock given `argv`, whatever the spelling: -no-kvm-pit-reinjection
// and kvm-pit.lost_tick_policy=discard are the same, as are -no-hpet and -machine hpet=off,
// hv-time and hv-time=on, an unwritten setting and its QEMU default. The later of repeated
// options wins, as in QEMU. Used to compare command lines by meaning (a snapshot saved by an
// older kvmrun, libvirt's translation of kvmrun's XML).
struct ClockMeaning {
  std::string rtc_base = "utc";
  std::string rtc_clock = "host";
  std::string rtc_driftfix = "none";
  std::string pit = "delay";
  bool hpet = true;
  bool kvmclock = true;
  std::set<std::string> hyperv;  // "hv-time", "hv-spinlocks=0x1fff", ...

  friend bool operator==(const ClockMeaning&, const ClockMeaning&) = default;
};
ClockMeaning ClockMeaningOf(const std::vector<std::string>& argv);
std::string ToString(const ClockMeaning& meaning);

// `argv` without what ClockMeaningOf reads: the -rtc, kvm-pit and HPET options dropped, the
// clock features dropped from -cpu (its model and other features kept). Two command lines
// mean the same VM when these are equal and so are their ClockMeanings.
std::vector<std::string> WithoutClockOptions(const std::vector<std::string>& argv);

}  // namespace kvmrun

#endif  // KVMRUN_CLOCK_RENDERING_H_

// Turning a ClockPolicy into QEMU arguments for one QEMU and one accelerator. Pure.
//
// The same intent is spelt differently per QEMU version (PIT discard is
// -no-kvm-pit-reinjection before 3.0 and -global kvm-pit.lost_tick_policy=discard after; HPET
// off is -no-hpet before 5.2 and -machine hpet=off from 5.2), and some settings do not exist
// under TCG (there is no kvm-pit, no Hyper-V, no kvm-clock). Every setting that renders to
// nothing says why in a note, so nothing is dropped silently.
//
// A value that is QEMU's own default is never written (RenderedSetting::qemu_default): writing
// one can only break a QEMU built differently (hpet=on makes a QEMU without the HPET exit), and
// verify reads every value back from the running VM, so a change of QEMU's defaults is caught
// there rather than papered over here.
#ifndef KVMRUN_CLOCK_RENDERING_H_
#define KVMRUN_CLOCK_RENDERING_H_

#include <map>
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

}  // namespace kvmrun

#endif  // KVMRUN_CLOCK_RENDERING_H_

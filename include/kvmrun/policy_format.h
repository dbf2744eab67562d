// Presenting a policy and its rendering: shell quoting, JSON, libvirt's <clock> XML and the
// --explain table. Pure: every function returns a value, nothing prints.
#ifndef KVMRUN_POLICY_FORMAT_H_
#define KVMRUN_POLICY_FORMAT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/clock_policy.h"
#include "kvmrun/clock_rendering.h"
#include "kvmrun/qemu_capabilities.h"
#include "kvmrun/vm_spec.h"

namespace kvmrun {

// One argument quoted for a POSIX shell: unchanged when it only holds safe characters, else in
// single quotes. ShellJoin quotes each and joins them with spaces.
std::string ShellQuote(std::string_view arg);
std::string ShellJoin(const std::vector<std::string>& argv);

// The policy alone: {"os": ..., "settings": {"rtc-base": {"value", "reason", "source",
// "overridden"}, ...}, "guest_hints": [...]}. ClockPolicyFromJson is its inverse and throws
// UsageError naming the bad field.
nlohmann::json ClockPolicyToJson(const ClockPolicy& policy);
ClockPolicy ClockPolicyFromJson(const nlohmann::json& json);

// Where the capabilities came from, for reports: "table" (shipped) or "probe" (a real binary).
struct RenderTarget {
  QemuCapabilities caps;
  Accel accel = Accel::kKvm;
  std::string caps_source;  // "table 7.2" or "probe /usr/bin/qemu-system-x86_64"
  std::string cpu_model;    // the CPU model the features are appended to
  HypervGaps host_gaps;     // for a probed binary under KVM: what this host's KVM cannot give
  std::string accel_note;   // why this accelerator, when it was chosen for the caller
};

// Everything `kvmrun policy --format json` prints: the policy, the target, each setting as
// rendered, the argv and the notes.
nlohmann::json PolicyReportJson(const ClockPolicy& policy, const ClockRendering& rendering,
                                const RenderTarget& target);

// A libvirt <clock> element with today's libvirt semantics: pit tickpolicy 'delay' re-injects
// (kvm-pit delay), 'discard' does not; rtc tickpolicy 'catchup' is QEMU's slew and 'delay' is
// QEMU's discard (driftfix=none).
std::string LibvirtClockXml(const ClockPolicy& policy);

// The policy's Hyper-V set as libvirt <features><hyperv mode='custom'>, less what needs hv-time
// when that is off; empty when the set is off. libvirt writes each as the same hv-* flag.
std::string LibvirtFeaturesXml(const ClockPolicy& policy);

// The --explain table: setting, value, argv, reason and source, then notes and guest hints.
std::string ExplainTable(const ClockPolicy& policy, const ClockRendering& rendering,
                         const RenderTarget& target);

// The hardware half of --explain: firmware, TPM, machine, buses, network card and display
// for `spec` (hardware_profile.h), each with its reason; "(asked for)" where the spec chose.
std::string HardwareTable(const VmSpec& spec);

}  // namespace kvmrun

#endif  // KVMRUN_POLICY_FORMAT_H_

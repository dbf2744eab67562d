// What a particular qemu-system-x86_64 can be told about timers, and which accelerator it runs.
//
// Rendering a ClockPolicy depends on these facts, never on guesses: QEMU renamed and removed
// clock options over the years (-no-kvm-pit-reinjection went in 3.0, -no-hpet in 9.0). The
// launcher fills a QemuCapabilities by probing the real binary; fixed tables for released
// versions are shipped so rendering can be tested and previewed without one.
#ifndef KVMRUN_QEMU_CAPABILITIES_H_
#define KVMRUN_QEMU_CAPABILITIES_H_

#include <array>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/qemu_version.h"

namespace kvmrun {

enum class Accel { kKvm, kTcg };
inline constexpr std::array kAllAccels{Accel::kKvm, Accel::kTcg};
std::string_view ToString(Accel accel);
// Throws UsageError naming `field`, the bad value and the valid ones.
Accel ParseAccel(std::string_view text, std::string_view field = "accel");

struct QemuCapabilities {
  QemuVersion version;
  // -global kvm-pit.lost_tick_policy=delay|discard (the kvm-pit device has the property).
  bool kvm_pit_lost_tick_policy = false;
  // The old -no-kvm-pit-reinjection flag (QEMU < 3.0).
  bool no_kvm_pit_reinjection_flag = false;
  // The pc/q35 machine property: -machine hpet=on|off (QEMU >= 5.2).
  bool machine_hpet_property = false;
  // The binary has an hpet device at all (RHEL-family builds leave it out: there, any mention
  // of hpet=on makes QEMU exit).
  bool hpet_device = false;
  // The old -no-hpet flag (QEMU < 9.0).
  bool no_hpet_flag = false;
  // -rtc driftfix=slew.
  bool rtc_driftfix = false;
  // The Hyper-V CPU properties kvmrun may write (KnownHypervProperties()) that this QEMU's x86
  // CPU has, sorted: "hv-ipi", "hv-relaxed", ..., "hv-time".
  std::vector<std::string> hv_properties;
  bool HasHv(std::string_view property) const;
  // x86 CPU property kvmclock.
  bool kvmclock = false;

  // Filled only by a probe of a real binary.
  std::string default_machine;
  std::vector<std::string> machine_types;
  // The most virtual CPUs each machine type takes, by name and by alias ("q35").
  std::map<std::string, int> machine_cpu_max;

  // True when the clock-related facts (version major.minor and every flag above) agree;
  // ignores the micro version and the probe-only fields.
  bool SameClockFeatures(const QemuCapabilities& other) const;

  friend bool operator==(const QemuCapabilities&, const QemuCapabilities&) = default;
};

// Every Hyper-V CPU property a policy can ask for: hv-time and HypervFeatures(kFull).
std::span<const std::string_view> KnownHypervProperties();

// The fixed tables shipped with kvmrun, oldest first.
std::span<const QemuCapabilities> ShippedCapabilities();

// The shipped table for version `text` ("7.2" or "7.2.x"). Throws UsageError when the text is
// malformed or no table exists for that major.minor, listing the shipped versions.
QemuCapabilities ShippedCapabilitiesFor(std::string_view text);

}  // namespace kvmrun

#endif  // KVMRUN_QEMU_CAPABILITIES_H_

#include "kvmrun/qemu_capabilities.h"

#include <algorithm>

#include "kvmrun/error.h"
#include "policy/names.h"

namespace kvmrun {
namespace {

constexpr std::string_view kKnownHv[] = {
    "hv-frequencies", "hv-ipi",   "hv-relaxed", "hv-reset",    "hv-runtime", "hv-spinlocks",
    "hv-stimer",      "hv-synic", "hv-time",    "hv-tlbflush", "hv-vapic",   "hv-vpindex"};

// Hyper-V properties by the QEMU release that added them (target/i386/cpu.c history):
// relaxed, vapic, spinlocks 1.1; time 2.0; reset, vpindex, runtime 2.5; synic, stimer 2.6;
// frequencies 2.12; tlbflush 3.0; ipi 3.1.
std::vector<std::string> HvPropertiesOf(QemuVersion version) {
  std::vector<std::string> out;
  for (std::string_view property : kKnownHv) {
    const bool newer = (property == "hv-tlbflush" && version < QemuVersion{3, 0, 0}) ||
                       (property == "hv-ipi" && version < QemuVersion{3, 1, 0});
    if (!newer) out.emplace_back(property);
  }
  return out;
}

// One row per shipped QEMU release. Sources: QEMU's docs/about/removed-features.rst and
// deprecated.rst (-no-kvm-pit-reinjection removed in 3.0, -no-hpet deprecated in 8.0 and removed
// in 9.0), the 5.2 changelog (machine property hpet), and `-help` / QMP of the real binaries:
// 7.2 (Debian 12) and 10.0 (Debian 12 backports) are re-checked against a probe by the
// integration tests, so these rows cannot rot silently.
QemuCapabilities Row(QemuVersion version, bool no_kvm_pit_reinjection_flag,
                     bool machine_hpet_property, bool no_hpet_flag) {
  QemuCapabilities caps;
  caps.version = version;
  caps.kvm_pit_lost_tick_policy = true;  // since QEMU 1.3
  caps.no_kvm_pit_reinjection_flag = no_kvm_pit_reinjection_flag;
  caps.machine_hpet_property = machine_hpet_property;
  caps.hpet_device = true;  // upstream builds it for x86; RHEL-family builds do not
  caps.no_hpet_flag = no_hpet_flag;
  caps.rtc_driftfix = true;  // since QEMU 0.13
  caps.hv_properties = HvPropertiesOf(version);
  caps.kvmclock = true;
  return caps;
}

const std::vector<QemuCapabilities>& Tables() {
  static const std::vector<QemuCapabilities> tables = {
      Row({2, 12, 0}, /*no_kvm_pit_reinjection_flag=*/true, /*machine_hpet_property=*/false,
          /*no_hpet_flag=*/true),
      Row({5, 2, 0}, false, true, true),
      Row({7, 2, 0}, false, true, true),
      Row({9, 2, 0}, false, true, false),
      Row({10, 0, 0}, false, true, false),
  };
  return tables;
}

}  // namespace

std::string_view ToString(Accel accel) {
  switch (accel) {
    case Accel::kKvm:
      return "kvm";
    case Accel::kTcg:
      return "tcg";
  }
  return "?";
}

Accel ParseAccel(std::string_view text, std::string_view option) {
  return ParseName(text, option, kAllAccels);
}

bool QemuCapabilities::SameClockFeatures(const QemuCapabilities& other) const {
  return version.major == other.version.major && version.minor == other.version.minor &&
         kvm_pit_lost_tick_policy == other.kvm_pit_lost_tick_policy &&
         no_kvm_pit_reinjection_flag == other.no_kvm_pit_reinjection_flag &&
         machine_hpet_property == other.machine_hpet_property && hpet_device == other.hpet_device &&
         no_hpet_flag == other.no_hpet_flag && rtc_driftfix == other.rtc_driftfix &&
         hv_properties == other.hv_properties && kvmclock == other.kvmclock;
}

bool QemuCapabilities::HasHv(std::string_view property) const {
  return std::find(hv_properties.begin(), hv_properties.end(), property) != hv_properties.end();
}

std::span<const std::string_view> KnownHypervProperties() { return kKnownHv; }

std::span<const QemuCapabilities> ShippedCapabilities() { return Tables(); }

QemuCapabilities ShippedCapabilitiesFor(std::string_view text) {
  std::string shipped;
  for (const QemuCapabilities& caps : Tables()) {
    if (!shipped.empty()) shipped += ", ";
    shipped += std::to_string(caps.version.major) + "." + std::to_string(caps.version.minor);
  }
  const auto version = ParseQemuVersion(text);
  if (!version) {
    throw UsageError("qemu_version", "malformed version '" + std::string(text) +
                                         "'; expected MAJOR.MINOR, one of: " + shipped);
  }
  for (const QemuCapabilities& caps : Tables()) {
    if (caps.version.major == version->major && caps.version.minor == version->minor) {
      QemuCapabilities result = caps;
      result.version = *version;
      return result;
    }
  }
  throw UsageError("qemu_version", "no capability table for QEMU '" + std::string(text) +
                                       "'; shipped: " + shipped + " (or probe the binary itself)");
}

}  // namespace kvmrun

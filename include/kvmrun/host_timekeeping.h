// The host facts guest timekeeping depends on, for `kvmrun doctor`: the host's clocksource,
// the TSC's flags, and what follows from them for kvm-clock, the Hyper-V TSC page and
// ptp_kvm in guests. Each fact says what it means and where that is written.
//
// Assessing is pure (AssessHostTimekeeping, on the texts of the files); ReadHostTimekeeping
// reads them on this host.
#ifndef KVMRUN_HOST_TIMEKEEPING_H_
#define KVMRUN_HOST_TIMEKEEPING_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace kvmrun {

struct HostTimekeepingFact {
  std::string name;     // "host clocksource"
  std::string value;    // "tsc"
  bool good = false;    // what guests want
  std::string meaning;  // what follows for guests
  std::string source;   // where that is written
};

struct HostTimekeeping {
  std::string clocksource;  // the host kernel's current clocksource
  bool constant_tsc = false;
  bool nonstop_tsc = false;
  // KVM keeps a master clock (guests' kvm-clock gets the stable bit) only on a TSC-based host
  // clocksource; the Hyper-V TSC page and ptp_kvm's clock pairing need the same.
  bool master_clock_possible = false;
  std::vector<HostTimekeepingFact> facts;
};

// `current_clocksource`: /sys/devices/system/clocksource/clocksource0/current_clocksource;
// `cpu_flags`: the "flags" line of /proc/cpuinfo (or its value); `ptp_kvm_module`: whether
// this kernel ships ptp_kvm (a guest running the same kernel has it too).
HostTimekeeping AssessHostTimekeeping(std::string_view current_clocksource,
                                      std::string_view cpu_flags, bool ptp_kvm_module);

// Reads the files of this host (missing ones read as empty).
HostTimekeeping ReadHostTimekeeping();

nlohmann::json HostTimekeepingToJson(const HostTimekeeping& host);

}  // namespace kvmrun

#endif  // KVMRUN_HOST_TIMEKEEPING_H_

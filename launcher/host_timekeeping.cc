#include "kvmrun/host_timekeeping.h"

#include <sys/utsname.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace kvmrun {
namespace {

constexpr char kKvmX86[] = "Linux arch/x86/kvm/x86.c";

bool HasFlag(std::string_view flags, std::string_view flag) {
  std::istringstream words{std::string(flags)};
  std::string word;
  while (words >> word) {
    if (word == flag) return true;
  }
  return false;
}

std::string Trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string CpuFlagsLine() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) return line.substr(line.find(':') + 1);
  }
  return "";
}

bool KernelShipsModule(const std::string& name) {
  utsname uts{};
  if (uname(&uts) != 0) return false;
  const std::string dep = ReadText(std::string("/lib/modules/") + uts.release + "/modules.dep");
  return std::filesystem::exists("/sys/module/" + name) ||
         dep.find("/" + name + ".ko") != std::string::npos;
}

}  // namespace

HostTimekeeping AssessHostTimekeeping(std::string_view current_clocksource,
                                      std::string_view cpu_flags, bool ptp_kvm_module) {
  HostTimekeeping host;
  host.clocksource = Trim(std::string(current_clocksource));
  host.constant_tsc = HasFlag(cpu_flags, "constant_tsc");
  host.nonstop_tsc = HasFlag(cpu_flags, "nonstop_tsc");
  host.master_clock_possible = host.clocksource == "tsc";

  host.facts.push_back(
      {"host clocksource", host.clocksource.empty() ? "unknown" : host.clocksource,
       host.master_clock_possible,
       host.master_clock_possible
           ? "KVM can keep a master clock: guests' kvm-clock gets the stable bit (fast vDSO "
             "reads, monotonic across vCPUs) and the Hyper-V reference TSC page works"
           : "KVM keeps no master clock on a host not timed by the TSC: guests' kvm-clock "
             "lacks the stable bit (slower, per-vCPU reads), Windows loses the reference TSC "
             "page and reads time through an MSR exit, ptp_kvm cannot pair clocks",
       std::string(kKvmX86) +
           ": pvclock_update_vm_gtod_copy() and kvm_pv_clock_pairing() need "
           "gtod_is_based_on_tsc(); arch/x86/kvm/hyperv.c: the TSC page needs the master clock"});
  host.facts.push_back(
      {"constant_tsc", host.constant_tsc ? "yes" : "no", host.constant_tsc,
       host.constant_tsc ? "the TSC ticks at one rate whatever the CPU frequency"
                         : "the TSC rate follows CPU frequency changes: the kernel will not "
                           "use it as a clocksource, so neither will KVM's master clock",
       "Linux Documentation/virt/kvm/x86/timekeeping.rst, section 'TSC hardware'"});
  host.facts.push_back(
      {"nonstop_tsc", host.nonstop_tsc ? "yes" : "no", host.nonstop_tsc,
       host.nonstop_tsc ? "the TSC keeps counting in deep C-states"
                        : "the TSC may stop in deep idle states: the kernel marks it unstable "
                          "and falls back to hpet or acpi_pm",
       "Linux Documentation/virt/kvm/x86/timekeeping.rst, section 'TSC hardware'"});
  host.facts.push_back(
      {"ptp_kvm for guests", ptp_kvm_module ? "this kernel ships it" : "not in this kernel",
       ptp_kvm_module && host.master_clock_possible,
       std::string("a guest with the ptp_kvm module gets /dev/ptp0, the host's clock; chrony "
                   "in the guest can follow it ('refclock PHC /dev/ptp0 poll 2') instead of NTP "
                   "servers") +
           (host.master_clock_possible ? "" : "; not on this host: it needs a tsc clocksource"),
       "Linux drivers/ptp/ptp_kvm_x86.c; " + std::string(kKvmX86) +
           ": kvm_pv_clock_pairing(); chrony.conf(5) refclock PHC"});
  return host;
}

HostTimekeeping ReadHostTimekeeping() {
  return AssessHostTimekeeping(
      ReadText("/sys/devices/system/clocksource/clocksource0/current_clocksource"), CpuFlagsLine(),
      KernelShipsModule("ptp_kvm"));
}

nlohmann::json HostTimekeepingToJson(const HostTimekeeping& host) {
  nlohmann::json facts = nlohmann::json::array();
  for (const HostTimekeepingFact& f : host.facts) {
    facts.push_back({{"name", f.name},
                     {"value", f.value},
                     {"good", f.good},
                     {"meaning", f.meaning},
                     {"source", f.source}});
  }
  return {{"clocksource", host.clocksource},
          {"constant_tsc", host.constant_tsc},
          {"nonstop_tsc", host.nonstop_tsc},
          {"master_clock_possible", host.master_clock_possible},
          {"facts", facts}};
}

}  // namespace kvmrun

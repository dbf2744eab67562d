// ReadClockState: the QMP side of verification.
#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <sstream>

#include "kvmrun/clock_verify.h"
#include "kvmrun/qmp_commands.h"
#include "qmp/json_fields.h"

namespace kvmrun {
namespace {

// Runs `read` and stores its value, or the error that explains why there is none. Only a lost
// connection escapes: nothing else can be read after it.
template <typename T, typename Read>
void Capture(Observed<T>& out, std::string where, Read read) {
  out.where = std::move(where);
  try {
    out.value = read();
  } catch (const QmpDisconnected&) {
    throw;
  } catch (const QmpError& e) {
    out.error = e.error_class() + ": " + e.description();
  } catch (const Error& e) {
    out.error = e.what();
  } catch (const nlohmann::json::exception& e) {
    out.error = std::string("unexpected reply: ") + e.what();
  }
}

// Where the timer devices are in the QOM tree. They move between QEMU versions (the RTC is
// /machine/unattached/device[N] in 7.2 but a child of the south bridge in 10.0), so the tree is
// walked breadth-first from /machine, containers first, never by hard-coded path; the walk
// stops as soon as every wanted type was found, or after kMaxNodes qom-list calls.
struct DeviceIndex {
  std::map<std::string, std::string> found;  // type -> first QOM path, for every type seen
  std::string error;                         // why the walk stopped early, if it did
  bool complete = false;                     // the whole tree (within budget) was seen

  const std::string* Find(const std::string& type) const {
    const auto it = found.find(type);
    return it == found.end() ? nullptr : &it->second;
  }
};

constexpr int kMaxNodes = 256;

// Children that cannot contain devices; descending into them only costs round trips.
bool IsLeafType(const std::string& type) {
  return type == "irq" || type == "memory-region" || type == "qemu:memory-region";
}

// `wanted` is a list of alternatives: the walk ends when each has one of its types found.
DeviceIndex FindDevices(QmpClient& qmp, const std::vector<std::set<std::string>>& wanted) {
  DeviceIndex index;
  std::deque<std::string> containers = {"/machine"};
  std::deque<std::string> devices;
  int visited = 0;
  const auto done = [&] {
    return std::all_of(wanted.begin(), wanted.end(), [&](const std::set<std::string>& any) {
      return std::any_of(any.begin(), any.end(),
                         [&](const std::string& type) { return index.found.count(type) != 0; });
    });
  };
  try {
    while (!done() && (!containers.empty() || !devices.empty())) {
      if (++visited > kMaxNodes) {
        index.error = "stopped after " + std::to_string(kMaxNodes) + " QOM nodes";
        return index;
      }
      std::deque<std::string>& queue = containers.empty() ? devices : containers;
      const std::string path = queue.front();
      queue.pop_front();
      for (const QomProperty& child : QomList(qmp, path)) {
        if (child.type.rfind("child<", 0) != 0) continue;
        const std::string type = child.type.substr(6, child.type.size() - 7);
        const std::string child_path = path + "/" + child.name;
        index.found.emplace(type, child_path);
        if (type == "container") {
          containers.push_back(child_path);
        } else if (!IsLeafType(type)) {
          devices.push_back(child_path);
        }
      }
    }
    index.complete = !done();
  } catch (const QmpDisconnected&) {
    throw;
  } catch (const Error& e) {
    index.error = e.what();
  }
  return index;
}

std::tm ParseTm(const nlohmann::json& j) {
  const JsonFields time(j, "the RTC's date");
  std::tm tm{};
  tm.tm_year = static_cast<int>(time.Int("tm_year", 0, 9999));
  tm.tm_mon = static_cast<int>(time.Int("tm_mon", 0, 11));
  tm.tm_mday = static_cast<int>(time.Int("tm_mday", 1, 31));
  tm.tm_hour = static_cast<int>(time.Int("tm_hour", 0, 23));
  tm.tm_min = static_cast<int>(time.Int("tm_min", 0, 59));
  tm.tm_sec = static_cast<int>(time.Int("tm_sec", 0, 60));
  return tm;
}

// The enlightenments of the full set that are on for one vCPU. hv-spinlocks is a retry count
// whose default, 0xffffffff, means "never notify", i.e. off.
std::string ReadHyperv(QmpClient& qmp, const std::string& cpu) {
  std::string on;
  for (const HypervFeature& f : HypervFeatures(HypervSet::kFull)) {
    const std::string property(f.property);
    const nlohmann::json value = QomGet(qmp, cpu, property);
    std::string text;
    if (value.is_boolean() && value.get<bool>()) {
      text = property;
    } else if (value.is_number_unsigned() && value.get<std::uint64_t>() != 0xffffffffu) {
      std::ostringstream hex;
      hex << property << "=0x" << std::hex << value.get<std::uint64_t>();
      text = hex.str();
    }
    if (!text.empty()) on += (on.empty() ? "" : ",") + text;
  }
  return on.empty() ? "none" : on;
}

}  // namespace

ClockReadback ReadClockState(QmpClient& qmp, const HostClock& host) {
  ClockReadback r;
  Capture(r.kvm_enabled, "query-kvm", [&] { return QueryKvm(qmp).enabled; });

  // The HPET is read from the device tree, never from /machine's hpet property: from QEMU 5.2
  // that only echoes the configuration (and a QEMU built without the device has none to
  // echo). An absent device is proved by a complete walk.
  const std::vector<std::set<std::string>> wanted = {
      {"mc146818rtc"}, {"kvm-pit", "isa-pit"}, {"hpet"}};
  const DeviceIndex devices = FindDevices(qmp, wanted);

  // The RTC: from the walk (QEMU 10 dropped /machine's rtc_state link), else that link.
  std::string rtc_path;
  if (const std::string* rtc = devices.Find("mc146818rtc")) {
    rtc_path = *rtc;
  } else {
    try {
      rtc_path = AsString(QomGet(qmp, "/machine", "rtc_state"), "rtc_state");
    } catch (const QmpDisconnected&) {
      throw;
    } catch (const std::exception& e) {
      r.rtc_lost_tick_policy.error =
          std::string("no mc146818rtc device found, and no rtc_state link on /machine: ") +
          e.what();
    }
  }
  if (!rtc_path.empty()) {
    Capture(r.rtc_lost_tick_policy, rtc_path,
            [&] { return AsString(QomGet(qmp, rtc_path, "lost_tick_policy"), "lost_tick_policy"); });
  }
  Capture(r.rtc_time, "/machine rtc-time", [&] {
    const std::tm tm = ParseTm(QomGet(qmp, "/machine", "rtc-time"));
    r.host_time = host.now();
    return tm;
  });

  const std::string* kvm_pit = devices.Find("kvm-pit");
  const std::string* isa_pit = devices.Find("isa-pit");
  if (kvm_pit != nullptr || isa_pit != nullptr) {
    r.pit_type.value = kvm_pit != nullptr ? "kvm-pit" : "isa-pit";
    r.pit_type.where = kvm_pit != nullptr ? *kvm_pit : *isa_pit;
    if (kvm_pit != nullptr) {
      Capture(r.pit_lost_tick_policy, *kvm_pit,
              [&] { return AsString(QomGet(qmp, *kvm_pit, "lost_tick_policy"), "lost_tick_policy"); });
    }
  } else {
    r.pit_type.error =
        devices.error.empty() ? "no kvm-pit or isa-pit device under /machine" : devices.error;
  }
  if (const std::string* hpet = devices.Find("hpet"); hpet != nullptr || devices.complete) {
    r.hpet = {hpet != nullptr, "", hpet != nullptr ? *hpet : "/machine (no hpet device)"};
  } else {
    r.hpet.error = "the QOM walk for an hpet device did not finish: " + devices.error;
  }

  try {
    for (const CpuInfo& cpu : QueryCpusFast(qmp)) {
      CpuClockFlags flags;
      flags.qom_path = cpu.qom_path;
      Capture(flags.hv_time, cpu.qom_path,
              [&] { return AsBool(QomGet(qmp, cpu.qom_path, "hv-time"), "hv-time"); });
      Capture(flags.kvmclock, cpu.qom_path,
              [&] { return AsBool(QomGet(qmp, cpu.qom_path, "kvmclock"), "kvmclock"); });
      if (r.kvm_enabled.value.value_or(false)) {
        Capture(flags.hyperv, cpu.qom_path, [&] { return ReadHyperv(qmp, cpu.qom_path); });
      } else {
        flags.hyperv.error = "not read: Hyper-V enlightenments need KVM";
      }
      r.cpus.push_back(std::move(flags));
    }
  } catch (const QmpDisconnected&) {
    throw;
  } catch (const Error& e) {
    r.cpus_error = e.what();
  }
  return r;
}

}  // namespace kvmrun

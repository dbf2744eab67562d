// ReadClockState and ReadLiveCapabilities: the QMP side of verification.
#include <algorithm>
#include <deque>

#include "kvmrun/clock_verify.h"
#include "kvmrun/qmp_commands.h"

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

// The devices found under /machine's containers (unattached, peripheral, peripheral-anon):
// name -> QOM path, for the types verification cares about. Walks containers only, so a VM
// costs a handful of qom-list calls, not hundreds.
struct DeviceIndex {
  std::vector<std::pair<std::string, std::string>> devices;  // (type, path)
  std::string error;

  const std::pair<std::string, std::string>* Find(std::initializer_list<const char*> types) const {
    for (const auto& device : devices) {
      for (const char* type : types) {
        if (device.first == type) return &device;
      }
    }
    return nullptr;
  }
};

DeviceIndex IndexDevices(QmpClient& qmp) {
  DeviceIndex index;
  std::deque<std::string> pending = {"/machine"};
  int visited = 0;
  try {
    while (!pending.empty() && visited < 64) {
      const std::string path = pending.front();
      pending.pop_front();
      ++visited;
      for (const QomProperty& child : QomList(qmp, path)) {
        if (child.type.rfind("child<", 0) != 0) continue;
        const std::string type = child.type.substr(6, child.type.size() - 7);
        const std::string child_path = path + "/" + child.name;
        if (type == "container") {
          pending.push_back(child_path);
        } else {
          index.devices.emplace_back(type, child_path);
        }
      }
    }
  } catch (const QmpDisconnected&) {
    throw;
  } catch (const Error& e) {
    index.error = e.what();
  }
  return index;
}

std::tm ParseTm(const nlohmann::json& j) {
  std::tm tm{};
  tm.tm_year = j.at("tm_year").get<int>();
  tm.tm_mon = j.at("tm_mon").get<int>();
  tm.tm_mday = j.at("tm_mday").get<int>();
  tm.tm_hour = j.at("tm_hour").get<int>();
  tm.tm_min = j.at("tm_min").get<int>();
  tm.tm_sec = j.at("tm_sec").get<int>();
  return tm;
}

}  // namespace

ClockReadback ReadClockState(QmpClient& qmp) {
  ClockReadback r;
  Capture(r.kvm_enabled, "query-kvm", [&] { return QueryKvm(qmp).enabled; });

  std::string rtc_path;
  try {
    rtc_path = QomGet(qmp, "/machine", "rtc_state").get<std::string>();
  } catch (const QmpDisconnected&) {
    throw;
  } catch (const std::exception& e) {
    r.rtc_lost_tick_policy.error = std::string("no RTC link on /machine (rtc_state): ") + e.what();
  }
  if (!rtc_path.empty()) {
    Capture(r.rtc_lost_tick_policy, rtc_path,
            [&] { return QomGet(qmp, rtc_path, "lost_tick_policy").get<std::string>(); });
  }
  Capture(r.rtc_time, "/machine rtc-time", [&] {
    const std::tm tm = ParseTm(QomGet(qmp, "/machine", "rtc-time"));
    r.host_time = std::time(nullptr);
    return tm;
  });

  const DeviceIndex devices = IndexDevices(qmp);
  if (const auto* pit = devices.Find({"kvm-pit", "isa-pit"})) {
    r.pit_type.value = pit->first;
    r.pit_type.where = pit->second;
    if (pit->first == "kvm-pit") {
      Capture(r.pit_lost_tick_policy, pit->second,
              [&] { return QomGet(qmp, pit->second, "lost_tick_policy").get<std::string>(); });
    }
  } else {
    r.pit_type.error =
        devices.error.empty() ? "no kvm-pit or isa-pit device under /machine" : devices.error;
  }
  if (devices.error.empty()) {
    const auto* hpet = devices.Find({"hpet"});
    r.hpet.value = hpet != nullptr;
    r.hpet.where = hpet != nullptr ? hpet->second : "/machine (no hpet device)";
  } else {
    Capture(r.hpet, "/machine hpet", [&] { return QomGet(qmp, "/machine", "hpet").get<bool>(); });
  }

  try {
    for (const CpuInfo& cpu : QueryCpusFast(qmp)) {
      CpuClockFlags flags;
      flags.qom_path = cpu.qom_path;
      Capture(flags.hv_time, cpu.qom_path,
              [&] { return QomGet(qmp, cpu.qom_path, "hv-time").get<bool>(); });
      Capture(flags.kvmclock, cpu.qom_path,
              [&] { return QomGet(qmp, cpu.qom_path, "kvmclock").get<bool>(); });
      r.cpus.push_back(std::move(flags));
    }
  } catch (const QmpDisconnected&) {
    throw;
  } catch (const Error& e) {
    r.cpus_error = e.what();
  }
  return r;
}

QemuCapabilities ReadLiveCapabilities(QmpClient& qmp) {
  QemuCapabilities caps;
  caps.version = qmp.greeting().version;
  const auto has = [](const std::vector<QomProperty>& props, const char* name) {
    return std::any_of(props.begin(), props.end(),
                       [&](const QomProperty& p) { return p.name == name; });
  };
  const auto try_props = [&](auto read) -> std::vector<QomProperty> {
    try {
      return read();
    } catch (const QmpError&) {
      return {};
    }
  };
  caps.kvm_pit_lost_tick_policy =
      has(try_props([&] { return DeviceListProperties(qmp, "kvm-pit"); }), "lost_tick_policy");
  for (const MachineInfo& m : QueryMachines(qmp)) {
    caps.machine_types.push_back(m.name);
    if (m.is_default) caps.default_machine = m.name;
  }
  caps.machine_hpet_property = has(QomList(qmp, "/machine"), "hpet");
  for (const CommandLineOption& option : QueryCommandLineOptions(qmp, "rtc")) {
    caps.rtc_driftfix = std::count(option.parameters.begin(), option.parameters.end(), "driftfix");
  }
  const auto cpu = try_props([&] { return DeviceListProperties(qmp, "max-x86_64-cpu"); });
  caps.hv_time = has(cpu, "hv-time");
  caps.kvmclock = has(cpu, "kvmclock");
  return caps;
}

}  // namespace kvmrun

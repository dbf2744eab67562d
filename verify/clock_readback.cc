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

// Where the timer devices are in the QOM tree. They move between QEMU versions (the RTC is
// /machine/unattached/device[N] in 7.2 but a child of the south bridge in 10.0), so the tree is
// walked breadth-first from /machine, containers first, never by hard-coded path. Each wave
// (every queued container, else every queued device) is one pipelined batch of qom-list
// calls, one round trip however wide; the walk stops as soon as every wanted type was found,
// or after kMaxNodes nodes.
struct DeviceIndex {
  std::map<std::string, std::string> found;  // type -> first QOM path, for every type seen
  std::string error;                         // why the walk stopped early, if it did
  bool complete = false;                     // the whole tree (within budget) was seen
  int waves = 0;                             // round trips the walk took

  const std::string* Find(const std::string& type) const {
    const auto it = found.find(type);
    return it == found.end() ? nullptr : &it->second;
  }
};

constexpr int kMaxNodes = 256;

// Children that cannot contain devices; descending into them only costs time.
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
      std::deque<std::string>& queue = containers.empty() ? devices : containers;
      std::vector<std::string> wave;
      while (!queue.empty() && visited < kMaxNodes) {
        wave.push_back(std::move(queue.front()));
        queue.pop_front();
        ++visited;
      }
      if (wave.empty()) {
        index.error = "stopped after " + std::to_string(kMaxNodes) + " QOM nodes";
        return index;
      }
      std::vector<QmpClient::Call> calls;
      for (const std::string& path : wave) calls.push_back({"qom-list", {{"path", path}}});
      const std::vector<QmpClient::Result> replies = qmp.ExecuteAll(calls);
      ++index.waves;
      for (std::size_t i = 0; i < wave.size(); ++i) {
        if (!replies[i].ok) {
          throw QmpError("qom-list", replies[i].error_class, replies[i].description);
        }
        for (const QomProperty& child : QomListFromReply(replies[i].value)) {
          if (child.type.rfind("child<", 0) != 0) continue;
          const std::string type = child.type.substr(6, child.type.size() - 7);
          const std::string child_path = wave[i] + "/" + child.name;
          index.found.emplace(type, child_path);
          if (type == "container") {
            containers.push_back(child_path);
          } else if (!IsLeafType(type)) {
            devices.push_back(child_path);
          }
        }
      }
      if (visited >= kMaxNodes && !done() && (!containers.empty() || !devices.empty())) {
        index.error = "stopped after " + std::to_string(kMaxNodes) + " QOM nodes";
        return index;
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

// One qom-get of a batch: its value, or why there is none.
template <typename T, typename Convert>
void FromResult(Observed<T>& out, std::string where, const QmpClient::Result& result,
                Convert convert) {
  out.where = std::move(where);
  if (!result.ok) {
    out.error = result.error_class + ": " + result.description;
    return;
  }
  try {
    out.value = convert(result.value);
  } catch (const Error& e) {
    out.error = e.what();
  }
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

// The enlightenments of the full set that are on for one vCPU, from the batch's replies for
// HypervFeatures(kFull) in order. hv-spinlocks is a retry count whose default, 0xffffffff,
// means "never notify", i.e. off.
std::string HypervFromResults(const std::vector<QmpClient::Result>& results, std::size_t first) {
  std::string on;
  std::size_t i = first;
  for (const HypervFeature& f : HypervFeatures(HypervSet::kFull)) {
    const QmpClient::Result& r = results.at(i++);
    if (!r.ok) throw QmpError("qom-get", r.error_class, r.description);
    const std::string property(f.property);
    const nlohmann::json& value = r.value;
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

QmpClient::Call QomGetCall(const std::string& path, const std::string& property) {
  return {"qom-get", {{"path", path}, {"property", property}}};
}

}  // namespace

namespace {

const std::vector<std::set<std::string>> kWantedDevices = {
    {"mc146818rtc"}, {"kvm-pit", "isa-pit"}, {"hpet"}};

std::string AsText(const QmpClient::Result& result) {
  return result.ok && result.value.is_string() ? result.value.get<std::string>() : "";
}

// The layout a walk finds, with what it could not find said in `r`.
QomLayout WalkLayout(QmpClient& qmp, ClockReadback& r) {
  const DeviceIndex devices = FindDevices(qmp, kWantedDevices);
  QomLayout layout;
  // The RTC: from the walk (QEMU 10 dropped /machine's rtc_state link), else that link.
  if (const std::string* rtc = devices.Find("mc146818rtc")) {
    layout.rtc = *rtc;
  } else {
    try {
      layout.rtc = AsString(QomGet(qmp, "/machine", "rtc_state"), "rtc_state");
    } catch (const QmpDisconnected&) {
      throw;
    } catch (const std::exception& e) {
      r.rtc_lost_tick_policy.error =
          std::string("no mc146818rtc device found, and no rtc_state link on /machine: ") +
          e.what();
    }
  }
  for (const char* type : {"kvm-pit", "isa-pit"}) {
    if (const std::string* pit = devices.Find(type); pit != nullptr && layout.pit.empty()) {
      layout.pit = *pit;
      layout.pit_type = type;
    }
  }
  if (layout.pit.empty()) {
    r.pit_type.error =
        devices.error.empty() ? "no kvm-pit or isa-pit device under /machine" : devices.error;
  }
  if (const std::string* hpet = devices.Find("hpet"); hpet != nullptr || devices.complete) {
    layout.hpet = hpet != nullptr ? *hpet : "";
    r.hpet = {hpet != nullptr, "", hpet != nullptr ? *hpet : "/machine (no hpet device)"};
  } else {
    r.hpet.error = "the QOM walk for an hpet device did not finish: " + devices.error;
  }
  return layout;
}

// The first batch: what needs no walk, and the checks of a cached layout's paths.
struct FirstBatch {
  std::vector<QmpClient::Call> calls;
  int kvm = -1, rtc_time = -1, cpus = -1, rtc_type = -1, pit_type = -1, hpet = -1;
  int rtc_policy = -1, pit_policy = -1;  // read along, for when the layout holds

  int Add(QmpClient::Call call) {
    calls.push_back(std::move(call));
    return static_cast<int>(calls.size()) - 1;
  }
};

// Whether the batch's replies confirm `layout`: each device of the type it was, and an HPET the
// walk found absent still configured off.
bool LayoutHolds(const QomLayout& layout, const FirstBatch& b,
                 const std::vector<QmpClient::Result>& results) {
  if (b.rtc_type < 0 || AsText(results[b.rtc_type]) != "mc146818rtc") return false;
  if (AsText(results[b.pit_type]) != layout.pit_type) return false;
  const QmpClient::Result& hpet = results[b.hpet];
  if (!layout.hpet.empty()) return AsText(hpet) == "hpet";
  return hpet.ok && hpet.value.is_boolean() && !hpet.value.get<bool>();
}

const auto kAsPolicy = [](const nlohmann::json& v) { return AsString(v, "lost_tick_policy"); };

// The RTC's and the kvm-pit's lost-tick policies, from `results` at `rtc_at` and `pit_at` (-1
// for none).
void TakeDeviceProperties(const QomLayout& layout, const std::vector<QmpClient::Result>& results,
                          int rtc_at, int pit_at, ClockReadback& r) {
  if (rtc_at >= 0) FromResult(r.rtc_lost_tick_policy, layout.rtc, results.at(rtc_at), kAsPolicy);
  if (!layout.pit.empty()) r.pit_type = {layout.pit_type, "", layout.pit};
  if (pit_at >= 0) FromResult(r.pit_lost_tick_policy, layout.pit, results.at(pit_at), kAsPolicy);
}

void ReadDeviceProperties(QmpClient& qmp, const QomLayout& layout, ClockReadback& r) {
  std::vector<QmpClient::Call> reads;
  int rtc_at = -1, pit_at = -1;
  if (!layout.rtc.empty()) {
    rtc_at = static_cast<int>(reads.size());
    reads.push_back(QomGetCall(layout.rtc, "lost_tick_policy"));
  }
  if (layout.pit_type == "kvm-pit") {
    pit_at = static_cast<int>(reads.size());
    reads.push_back(QomGetCall(layout.pit, "lost_tick_policy"));
  }
  TakeDeviceProperties(layout, qmp.ExecuteAll(reads), rtc_at, pit_at, r);
}

// The vCPUs' clock flags (hv-time, kvmclock, the Hyper-V set): read under KVM only, one batch.
void ReadCpuFlags(QmpClient& qmp, const std::vector<CpuInfo>& cpus, bool kvm, ClockReadback& r) {
  std::vector<QmpClient::Call> reads;
  for (const CpuInfo& cpu : kvm ? cpus : std::vector<CpuInfo>{}) {
    reads.push_back(QomGetCall(cpu.qom_path, "hv-time"));
    reads.push_back(QomGetCall(cpu.qom_path, "kvmclock"));
    for (const HypervFeature& f : HypervFeatures(HypervSet::kFull)) {
      reads.push_back(QomGetCall(cpu.qom_path, std::string(f.property)));
    }
  }
  const std::vector<QmpClient::Result> values = qmp.ExecuteAll(reads);
  std::size_t at = 0;
  for (const CpuInfo& cpu : cpus) {
    CpuClockFlags flags;
    flags.qom_path = cpu.qom_path;
    flags.hyperv.where = cpu.qom_path;
    if (!kvm) {
      flags.hv_time.error = flags.kvmclock.error = "not read: it needs KVM";
      flags.hyperv.error = "not read: Hyper-V enlightenments need KVM";
      r.cpus.push_back(std::move(flags));
      continue;
    }
    FromResult(flags.hv_time, cpu.qom_path, values.at(at++),
               [](const nlohmann::json& v) { return AsBool(v, "hv-time"); });
    FromResult(flags.kvmclock, cpu.qom_path, values.at(at++),
               [](const nlohmann::json& v) { return AsBool(v, "kvmclock"); });
    try {
      flags.hyperv.value = HypervFromResults(values, at);
    } catch (const QmpError& e) {
      flags.hyperv.error = e.error_class() + ": " + e.description();
    }
    at += HypervFeatures(HypervSet::kFull).size();
    r.cpus.push_back(std::move(flags));
  }
}

}  // namespace

ClockReadback ReadClockState(QmpClient& qmp, const HostClock& host, const ReadbackHints& hints) {
  ClockReadback r;
  const QomLayout cached = hints.layout != nullptr ? *hints.layout : QomLayout{};
  const bool tcg_expected = hints.expected_accel == Accel::kTcg;
  // Round trip 1: the accelerator, the RTC's time, the vCPUs (unless TCG is expected), and a
  // cached layout's checks.
  FirstBatch b;
  b.kvm = b.Add({"query-kvm", nullptr});
  b.rtc_time = b.Add(QomGetCall("/machine", "rtc-time"));
  if (!tcg_expected) b.cpus = b.Add({"query-cpus-fast", nullptr});
  if (cached.usable()) {
    b.rtc_type = b.Add(QomGetCall(cached.rtc, "type"));
    b.pit_type = b.Add(QomGetCall(cached.pit, "type"));
    b.hpet = b.Add(cached.hpet.empty() ? QomGetCall("/machine", "hpet")
                                       : QomGetCall(cached.hpet, "type"));
    b.rtc_policy = b.Add(QomGetCall(cached.rtc, "lost_tick_policy"));
    if (cached.pit_type == "kvm-pit")
      b.pit_policy = b.Add(QomGetCall(cached.pit, "lost_tick_policy"));
  }
  const std::vector<QmpClient::Result> first = qmp.ExecuteAll(b.calls);
  r.host_time = host.now();
  FromResult(r.kvm_enabled, "query-kvm", first[b.kvm],
             [](const nlohmann::json& v) { return KvmStatusFromReply(v).enabled; });
  FromResult(r.rtc_time, "/machine rtc-time", first[b.rtc_time], ParseTm);
  const bool kvm = r.kvm_enabled.value.value_or(false);

  std::vector<CpuInfo> cpus;
  try {
    if (b.cpus >= 0 || kvm) {
      const QmpClient::Result listed =
          b.cpus >= 0 ? first[b.cpus] : qmp.ExecuteAll({{"query-cpus-fast", nullptr}}).at(0);
      if (!listed.ok) throw QmpError("query-cpus-fast", listed.error_class, listed.description);
      cpus = CpusFromReply(listed.value);
    }
  } catch (const QmpDisconnected&) {
    throw;
  } catch (const Error& e) {
    r.cpus_error = e.what();
  }

  // A layout that holds was read along with everything else; otherwise the walk's waves and
  // one more round trip.
  QomLayout layout;
  if (cached.usable() && LayoutHolds(cached, b, first)) {
    layout = cached;
    r.hpet = {!layout.hpet.empty(), "",
              layout.hpet.empty() ? "/machine (no hpet device; hpet=off)" : layout.hpet};
    TakeDeviceProperties(layout, first, b.rtc_policy, b.pit_policy, r);
  } else {
    layout = WalkLayout(qmp, r);
    ReadDeviceProperties(qmp, layout, r);
  }
  ReadCpuFlags(qmp, cpus, kvm, r);  // nothing to ask under TCG
  if (hints.layout != nullptr) *hints.layout = layout.usable() ? layout : QomLayout{};
  return r;
}

nlohmann::json QomLayoutToJson(const QomLayout& layout) {
  return {{"rtc", layout.rtc},
          {"pit", layout.pit},
          {"pit_type", layout.pit_type},
          {"hpet", layout.hpet}};
}

QomLayout QomLayoutFromJson(const nlohmann::json& json) {
  try {
    const JsonFields f(json, "layout");
    return {f.String("rtc"), f.String("pit"), f.String("pit_type"), f.StringOr("hpet", "")};
  } catch (const Error&) {
    return {};
  }
}

}  // namespace kvmrun

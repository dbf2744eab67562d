#include "kvmrun/qemu_probe.h"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/unique_fd.h"
#include "kvmrun/error.h"
#include "kvmrun/qmp_client.h"
#include "kvmrun/qmp_commands.h"
#include "launcher/qemu_install.h"
#include "launcher/run_capture.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
constexpr char kBinaryName[] = "qemu-system-x86_64";
constexpr int kCacheFormat = 3;  // 2: machine_cpu_max; 3: hv_properties, hpet_device

std::string Absolute(const std::string& path) {
  std::error_code ec;
  const auto absolute = std::filesystem::absolute(path, ec);
  return ec ? path : absolute.lexically_normal().string();
}

void RequireExecutable(const std::string& path, const std::string& field) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    throw UsageError(field, "'" + path + "': " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode) || access(path.c_str(), X_OK) != 0) {
    throw UsageError(field, "'" + path + "' is not an executable file");
  }
}

// The first line of `text`, for error messages.
std::string FirstLine(const std::string& text) {
  const std::string line = text.substr(0, text.find('\n'));
  return line.size() > 120 ? line.substr(0, 120) + "..." : line;
}

// Whether `-help` output lists `flag` as an option of its own (at the start of a line).
bool HelpListsFlag(const std::string& help, const std::string& flag) {
  std::istringstream lines(help);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.compare(0, flag.size(), flag) == 0 &&
        (line.size() == flag.size() || line[flag.size()] == ' ' || line[flag.size()] == '\t')) {
      return true;
    }
  }
  return false;
}

bool HasProperty(const std::vector<QomProperty>& properties, std::string_view name) {
  return std::any_of(properties.begin(), properties.end(),
                     [&](const QomProperty& p) { return p.name == name; });
}

// The QMP half of the probe: devices, properties and machine types.
QemuCapabilities ProbeOverQmp(const std::string& qemu, ProcessRunner& runner, StopRequests* stop) {
  auto [ours, theirs] = MakeSocketPair();
  auto [err_read, err_write] = MakePipe();
  SpawnRequest request =
      QemuSpawnRequest(qemu, {"-machine", "none", "-accel", "tcg", "-nodefaults", "-no-user-config",
                              "-display", "none", "-chardev",
                              "socket,id=probe,fd=" + std::to_string(SpawnRequest::kFirstPassedFd),
                              "-mon", "chardev=probe,mode=control"});
  request.pass_fds = {theirs.get()};
  request.stderr_fd = err_write.get();
  std::unique_ptr<Process> child = runner.Spawn(request);
  theirs.Reset();
  err_write.Reset();
  try {
    WaitForFd(ours.get(), POLLIN, 10s, stop, "while probing " + qemu);
    QmpClient qmp(AdoptQmpSocket(ours.Release()), 10s);
    QemuCapabilities caps = CapabilitiesFromQmp(qmp);
    qmp.Execute("quit");
    child->Wait(5s);
    return caps;
  } catch (const Interrupted&) {
    child->Signal(SIGKILL);
    child->Wait(2s);
    throw;
  } catch (const Error& e) {
    child->Signal(SIGKILL);
    child->Wait(2s);
    char buffer[4096];
    const ssize_t n = read(err_read.get(), buffer, sizeof(buffer));
    throw Error("probing " + qemu + " over QMP failed: " + e.what() +
                (n > 0 ? " (QEMU said: " + FirstLine(std::string(buffer, n)) + ")" : ""));
  }
}

struct BinaryIdentity {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  bool ok = false;
};

BinaryIdentity Identify(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return {};
  return {static_cast<std::uint64_t>(st.st_size),
          static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec, true};
}

std::uint64_t Fnv1a(const std::string& text) {
  std::uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

}  // namespace

QemuCapabilities CapabilitiesFromQmp(QmpClient& qmp) {
  QemuCapabilities caps;
  caps.version = qmp.greeting().version;
  // Asked by name rather than with qom-list-types, which loads every module: one module that
  // fails to load (a stray one from another QEMU version) would end the probe.
  try {
    caps.kvm_pit_lost_tick_policy =
        HasProperty(DeviceListProperties(qmp, "kvm-pit"), "lost_tick_policy");
  } catch (const QmpError&) {
    caps.kvm_pit_lost_tick_policy = false;  // no kvm-pit device in this binary
  }
  for (const MachineInfo& machine : QueryMachines(qmp)) {
    caps.machine_types.push_back(machine.name);
    if (machine.is_default) caps.default_machine = machine.name;
    caps.machine_cpu_max[machine.name] = machine.cpu_max;
    if (!machine.alias.empty()) caps.machine_cpu_max[machine.alias] = machine.cpu_max;
  }
  std::sort(caps.machine_types.begin(), caps.machine_types.end());
  if (!caps.default_machine.empty()) {
    caps.machine_hpet_property =
        HasProperty(QomListProperties(qmp, caps.default_machine + "-machine"), "hpet");
  }
  for (const CommandLineOption& option : QueryCommandLineOptions(qmp, "rtc")) {
    caps.rtc_driftfix = std::count(option.parameters.begin(), option.parameters.end(), "driftfix");
  }
  try {
    caps.hpet_device = !DeviceListProperties(qmp, "hpet").empty();
  } catch (const QmpError&) {
    caps.hpet_device = false;  // built without it (RHEL-family QEMU)
  }
  const auto cpu = DeviceListProperties(qmp, "max-x86_64-cpu");
  for (std::string_view property : KnownHypervProperties()) {
    if (HasProperty(cpu, property)) caps.hv_properties.emplace_back(property);
  }
  std::sort(caps.hv_properties.begin(), caps.hv_properties.end());
  caps.kvmclock = HasProperty(cpu, "kvmclock");
  return caps;
}

std::string FindQemu(const std::string& explicit_path) {
  if (!explicit_path.empty()) {
    RequireExecutable(explicit_path, "qemu");
    return Absolute(explicit_path);
  }
  if (const char* env = std::getenv("KVMRUN_QEMU"); env != nullptr && *env != '\0') {
    RequireExecutable(env, "$KVMRUN_QEMU");
    return Absolute(env);
  }
  if (const std::string found = FindExecutable(kBinaryName); !found.empty()) {
    return Absolute(found);
  }
  throw UsageError(std::string(kBinaryName) +
                   " not found (tried the given path, $KVMRUN_QEMU and PATH); install it "
                   "with 'sudo apt-get install qemu-system-x86' or give its path");
}

QemuCapabilities ProbeQemu(const std::string& qemu, ProcessRunner& runner, StopRequests* stop) {
  const CapturedRun run =
      RunAndCapture(runner, QemuSpawnRequest(qemu, {"-help"}), 10s, 1 << 20, stop);
  if (run.timed_out || !run.status.Success() ||
      run.out.find("QEMU emulator version") == std::string::npos) {
    const std::string said = FirstLine(!run.err.empty() ? run.err : run.out);
    throw UsageError("'" + qemu + "' does not look like " + kBinaryName + ": '-help' " +
                     (run.timed_out ? "hung" : run.status.ToString()) +
                     (said.empty() ? "" : ", printing: " + said));
  }
  QemuCapabilities caps = ProbeOverQmp(qemu, runner, stop);
  caps.no_hpet_flag = HelpListsFlag(run.out, "-no-hpet");
  caps.no_kvm_pit_reinjection_flag = HelpListsFlag(run.out, "-no-kvm-pit-reinjection");
  return caps;
}

std::string DefaultCacheDir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg == '/') {
    return std::string(xdg) + "/kvmrun";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && *home != '\0' ? home : "/tmp") + "/.cache/kvmrun";
}

std::string ProbeCache::PathFor(const std::string& qemu) const {
  char name[40];
  std::snprintf(name, sizeof(name), "qemu-%016llx.json",
                static_cast<unsigned long long>(Fnv1a(qemu)));
  return dir_ + "/" + name;
}

std::optional<nlohmann::json> ProbeCache::Load(const std::string& qemu) const {
  const BinaryIdentity id = Identify(qemu);
  if (!id.ok) return std::nullopt;
  std::ifstream in(PathFor(qemu));
  if (!in) return std::nullopt;
  try {
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    nlohmann::json entry = ParseBoundedJson(text);
    const nlohmann::json& binary = entry.at("binary");
    if (entry.at("format") != kCacheFormat || binary.at("path") != qemu ||
        binary.at("size") != id.size || binary.at("mtime_ns") != id.mtime_ns) {
      return std::nullopt;
    }
    return entry;
  } catch (const std::exception&) {
    return std::nullopt;  // corrupt or unreadable: ignored, and rewritten by the next Store
  }
}

void ProbeCache::Store(const std::string& qemu, const nlohmann::json& entry) const {
  const BinaryIdentity id = Identify(qemu);
  if (!id.ok) return;
  nlohmann::json full = entry;
  full["format"] = kCacheFormat;
  full["binary"] = {{"path", qemu}, {"size", id.size}, {"mtime_ns", id.mtime_ns}};
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  const std::string path = PathFor(qemu);
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return;
    out << full.dump(2) << "\n";
    if (!out) {
      std::filesystem::remove(tmp, ec);
      return;
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) std::filesystem::remove(tmp, ec);
}

nlohmann::json CapabilitiesToJson(const QemuCapabilities& caps) {
  return {{"version", ToString(caps.version)},
          {"kvm_pit_lost_tick_policy", caps.kvm_pit_lost_tick_policy},
          {"no_kvm_pit_reinjection_flag", caps.no_kvm_pit_reinjection_flag},
          {"machine_hpet_property", caps.machine_hpet_property},
          {"hpet_device", caps.hpet_device},
          {"no_hpet_flag", caps.no_hpet_flag},
          {"rtc_driftfix", caps.rtc_driftfix},
          {"hv_properties", caps.hv_properties},
          {"kvmclock", caps.kvmclock},
          {"default_machine", caps.default_machine},
          {"machine_types", caps.machine_types},
          {"machine_cpu_max", caps.machine_cpu_max}};
}

QemuCapabilities CapabilitiesFromJson(const nlohmann::json& json) {
  QemuCapabilities caps;
  const auto version = ParseQemuVersion(json.at("version").get<std::string>());
  if (!version) throw std::invalid_argument("bad version");
  caps.version = *version;
  caps.kvm_pit_lost_tick_policy = json.at("kvm_pit_lost_tick_policy").get<bool>();
  caps.no_kvm_pit_reinjection_flag = json.at("no_kvm_pit_reinjection_flag").get<bool>();
  caps.machine_hpet_property = json.at("machine_hpet_property").get<bool>();
  caps.hpet_device = json.at("hpet_device").get<bool>();
  caps.no_hpet_flag = json.at("no_hpet_flag").get<bool>();
  caps.rtc_driftfix = json.at("rtc_driftfix").get<bool>();
  caps.hv_properties = json.at("hv_properties").get<std::vector<std::string>>();
  caps.kvmclock = json.at("kvmclock").get<bool>();
  caps.default_machine = json.at("default_machine").get<std::string>();
  caps.machine_types = json.at("machine_types").get<std::vector<std::string>>();
  caps.machine_cpu_max = json.at("machine_cpu_max").get<std::map<std::string, int>>();
  return caps;
}

ProbeResult ProbeQemuCached(const std::string& qemu, ProcessRunner& runner, const ProbeCache& cache,
                            StopRequests* stop) {
  const auto start = Clock::now();
  ProbeResult result;
  std::optional<nlohmann::json> entry = cache.Load(qemu);
  if (entry && entry->contains("capabilities")) {
    try {
      result.caps = CapabilitiesFromJson(entry->at("capabilities"));
      result.from_cache = true;
    } catch (const std::exception&) {
      entry.reset();
    }
  }
  if (!result.from_cache) {
    result.caps = ProbeQemu(qemu, runner, stop);
    nlohmann::json fresh = nlohmann::json::object();
    // Keep what else the entry holds (the KVM check) only if it was for this same binary.
    if (entry) fresh = *entry;
    fresh["capabilities"] = CapabilitiesToJson(result.caps);
    cache.Store(qemu, fresh);
  }
  result.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  return result;
}

}  // namespace kvmrun

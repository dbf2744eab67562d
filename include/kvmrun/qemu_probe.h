// Finding the QEMU binary and learning what it can do, by asking it.
//
// The probe runs the binary twice, without a guest and without files: once with -help, for
// the plain flags QMP cannot introspect (-no-hpet, -no-kvm-pit-reinjection; libvirt reads the
// same text), and once with `-machine none` and QMP over a socketpair, for the devices and
// properties (kvm-pit and its lost_tick_policy, the machine's hpet property, -rtc driftfix,
// the CPU's hv-time and kvmclock, the machine types). Results are cached per binary (path,
// size, mtime) under $XDG_CACHE_HOME/kvmrun; a corrupt cache file is ignored and rewritten.
#ifndef KVMRUN_QEMU_PROBE_H_
#define KVMRUN_QEMU_PROBE_H_

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "kvmrun/process.h"
#include "kvmrun/qemu_capabilities.h"
#include "kvmrun/qmp_client.h"
#include "kvmrun/stop_requests.h"

namespace kvmrun {

// The binary to run: `explicit_path` if given, else $KVMRUN_QEMU, else qemu-system-x86_64 on
// PATH. Throws UsageError when the chosen path does not exist or is not executable, and when
// none is found (saying how to install QEMU). Returns an absolute path.
std::string FindQemu(const std::string& explicit_path);

// Asks the binary. Throws UsageError when it does not behave like qemu-system-x86_64 (with
// what it printed), Error when it fails or hangs during the probe, Interrupted on a stop
// request.
QemuCapabilities ProbeQemu(const std::string& qemu, ProcessRunner& runner,
                           StopRequests* stop = nullptr);

// What a QEMU shows of itself over QMP (everything ProbeQemu learns but the -help flags):
// also usable on a running VM that kvmrun did not start.
QemuCapabilities CapabilitiesFromQmp(QmpClient& qmp);

std::string DefaultCacheDir();  // $XDG_CACHE_HOME/kvmrun, else $HOME/.cache/kvmrun

// One cache file per binary. Everything kvmrun learns about a binary by running it lives here,
// keyed by the binary's identity, so a rebuilt or upgraded QEMU is probed again.
class ProbeCache {
 public:
  explicit ProbeCache(std::string dir = DefaultCacheDir()) : dir_(std::move(dir)) {}

  // The cached entry for `qemu`, or nullopt when there is none, it is for another build of the
  // binary, or the file is unreadable or corrupt.
  std::optional<nlohmann::json> Load(const std::string& qemu) const;
  // Writes the entry atomically (temporary file and rename). Failures are ignored: the cache
  // is an optimisation.
  void Store(const std::string& qemu, const nlohmann::json& entry) const;

  std::string PathFor(const std::string& qemu) const;

 private:
  std::string dir_;
};

nlohmann::json CapabilitiesToJson(const QemuCapabilities& caps);
// Throws std::exception on malformed input (callers treat it as a corrupt cache).
QemuCapabilities CapabilitiesFromJson(const nlohmann::json& json);

struct ProbeResult {
  QemuCapabilities caps;
  bool from_cache = false;
  std::chrono::microseconds elapsed{0};
};

// ProbeQemu through the cache.
ProbeResult ProbeQemuCached(const std::string& qemu, ProcessRunner& runner, const ProbeCache& cache,
                            StopRequests* stop = nullptr);

}  // namespace kvmrun

#endif  // KVMRUN_QEMU_PROBE_H_

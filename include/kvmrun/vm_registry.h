// Named VMs: a VM started with a name can be found again by other processes (kvmrun ps, stop,
// exec, verify, qmp) through a per-user directory keyed by the name:
//
//   <base>/NAME/           mode 0700; base: DefaultNamedVmBase()
//     lock                 held (flock) by the process that owns the VM, for its whole life
//     vm.json              who runs it: pids, accelerator, OS, QEMU, when it started
//     qmp.sock agent.sock  the VM's QMP monitor and guest agent
//     console.log          the console of a detached VM
//     console.sock         its console for `kvmrun console NAME` (the CLI's supervisor serves it)
//
// The lock, not a pid, says whether the VM is alive: it goes when its owner dies, however it
// dies, and pid reuse cannot fake it. A directory whose lock nobody holds is stale and is
// removed by the next Claim of that name or the next ListNamedVms.
#ifndef KVMRUN_VM_REGISTRY_H_
#define KVMRUN_VM_REGISTRY_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvmrun {

// $XDG_RUNTIME_DIR/kvmrun when XDG_RUNTIME_DIR is set, else /run/user/<uid>/kvmrun when that
// directory is this user's and private, else $XDG_CACHE_HOME/kvmrun/run (~/.cache/kvmrun/run):
// never a fixed name in a shared directory, which another user could make first. The base and
// each VM's directory are checked (EnsureSafeDir) before use. Throws UsageError("HOME") when
// the last is needed and the user has no home.
std::string DefaultNamedVmBase();

// Where a named VM keeps what outlives a run (VmSpec::state_dir): $XDG_DATA_HOME/kvmrun/vms/NAME,
// else ~/.local/share/kvmrun/vms/NAME ($HOME, else the password database's home). Not the
// runtime directory, which goes with the VM.
std::string DefaultStateDir(std::string_view name);

// A name is 1 to 64 of letters, digits, '.', '_', '-', not starting with '.' or '-': it is a
// directory name, and appears in socket paths. Throws UsageError("name", ...) otherwise.
void ValidateVmName(std::string_view name);

// The owner's hold on a name. Moves; the destructor removes the directory (unless Released).
class VmRegistration {
 public:
  // Takes `name` under `base` (created 0700, and checked to be this user's and not a link).
  // Throws UsageError when a live VM has the name ("VM 'x' is already running (pid N)"), the
  // name is invalid, or `base` is unsafe (UnsafePath: another user's, writable by others).
  static VmRegistration Claim(const std::string& base, const std::string& name);

  VmRegistration() = default;
  ~VmRegistration();
  VmRegistration(VmRegistration&& other) noexcept;
  VmRegistration& operator=(VmRegistration&& other) noexcept;
  VmRegistration(const VmRegistration&) = delete;
  VmRegistration& operator=(const VmRegistration&) = delete;

  const std::string& name() const { return name_; }
  const std::string& dir() const { return dir_; }
  std::string Path(std::string_view file) const { return dir_ + "/" + std::string(file); }

  // Writes vm.json (atomically): what `ps` shows. Adds the name.
  void Publish(nlohmann::json info) const;

  // Lets go of this object's descriptor without removing anything: for the parent of a fork
  // whose child keeps the lock (the same open file) and the directory.
  void Release();

 private:
  void Drop();  // removes the directory and lets go of the lock

  std::string name_;
  std::string dir_;
  int lock_fd_ = -1;
};

struct NamedVm {
  std::string name;
  std::string dir;
  nlohmann::json info;  // vm.json; empty object when it is not written yet
  // What vm.json says, read out for convenience (0 / empty when absent).
  pid_t supervisor_pid = 0;
  pid_t qemu_pid = 0;
  std::time_t started = 0;
};

// The live named VMs under `base`, by name; stale directories are removed on the way.
std::vector<NamedVm> ListNamedVms(const std::string& base = DefaultNamedVmBase());
// The live VM called `name`, if any.
std::optional<NamedVm> FindNamedVm(const std::string& name,
                                   const std::string& base = DefaultNamedVmBase());

// How a named VM's last run ended, kept after its runtime directory is gone: written by its
// supervisor into DefaultStateDir(name) (last-run.json, and last-run.log with the end of a
// detached VM's log) before it lets go of the name, read by StopNamedVm and `ps --all`.
struct LastRun {
  std::string name;
  pid_t supervisor_pid = 0;
  std::int64_t started_unix = 0;
  std::int64_t ended_unix = 0;
  // Empty when the guest ended the run itself; else what stopped it ("SIGTERM", "timeout").
  std::string stopped_by;
  std::string step;             // the ladder's step that ended QEMU (ToString(ShutdownStep))
  bool forced = false;          // QEMU was quit, terminated or killed: the guest did not power off
  std::string shutdown_reason;  // from QEMU's SHUTDOWN event ("guest-shutdown", ...)
  std::string qemu_exit;        // QEMU's exit status, as text
  int exit_code = 0;            // what the supervisor exited with (run's exit codes)
  std::string summary;          // one line saying all that

  friend bool operator==(const LastRun&, const LastRun&) = default;
};
nlohmann::json LastRunToJson(const LastRun& run);
// Writes the record, atomically, into DefaultStateDir(run.name) (made private if missing), with
// `log` (its last 256 KiB) beside it. Throws Error.
void RecordLastRun(const LastRun& run, std::string_view log);
// The record of `name`'s last run; nullopt when there is none or it cannot be read.
std::optional<LastRun> ReadLastRun(const std::string& name);
// Every name with a record, by name.
std::vector<LastRun> ListLastRuns();

struct StopResult {
  // How the run ended, from its record; nullopt when the supervisor left none (it was killed).
  std::optional<LastRun> ended;
  std::chrono::milliseconds took{0};
};
// Stops the named VM the way SIGTERM stops a foreground run (its supervisor's ladder) and
// waits up to `timeout` for it to end. Throws UsageError when no VM has the name, Error when it
// still runs after `timeout` or has no supervisor yet.
StopResult StopNamedVm(const std::string& name, std::chrono::milliseconds timeout,
                       const std::string& base = DefaultNamedVmBase());

}  // namespace kvmrun

#endif  // KVMRUN_VM_REGISTRY_H_

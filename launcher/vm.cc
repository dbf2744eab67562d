#include "kvmrun/vm.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "io/errno_text.h"
#include "io/safe_file.h"
#include "io/unique_fd.h"
#include "kvmrun/error.h"
#include "kvmrun/firmware.h"
#include "kvmrun/policy_format.h"
#include "kvmrun/qemu_command.h"
#include "kvmrun/qemu_probe.h"
#include "kvmrun/qmp_commands.h"
#include "kvmrun/stop_requests.h"
#include "kvmrun/vm_registry.h"
#include "launcher/power_button.h"
#include "launcher/qemu_install.h"
#include "launcher/runtime_dir.h"
#include "launcher/swtpm.h"

namespace kvmrun {

bool PoweredOff(ShutdownStep step) {
  switch (step) {
    case ShutdownStep::kAlreadyExited:
    case ShutdownStep::kPowerdown:
    case ShutdownStep::kAgentPowerdown:
      return true;
    case ShutdownStep::kQuit:
    case ShutdownStep::kTerminate:
    case ShutdownStep::kKill:
      return false;
  }
  return false;
}

std::string_view ToString(ShutdownStep step) {
  switch (step) {
    case ShutdownStep::kAlreadyExited:
      return "already exited";
    case ShutdownStep::kPowerdown:
      return "powerdown";
    case ShutdownStep::kAgentPowerdown:
      return "the guest agent's powerdown";
    case ShutdownStep::kQuit:
      return "quit";
    case ShutdownStep::kTerminate:
      return "SIGTERM";
    case ShutdownStep::kKill:
      return "SIGKILL";
  }
  return "?";
}

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::chrono::microseconds Since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
}

constexpr std::size_t kStderrTailBytes = 16 * 1024;

// Everything Start() and PlanVm() decide before QEMU runs.
struct Decisions {
  std::string qemu;
  QemuCapabilities caps;
  KvmDiagnosis kvm;
  AccelDecision accel;
  ClockPolicy policy;
  ClockRendering rendering;
  std::vector<std::string> firmware_dirs;
  HardwareProfile hardware;
  std::optional<FirmwareImage> firmware;  // UEFI
};

void FillDefaults(VmOptions& o) {
  if (!o.runner) o.runner = MakeProcessRunner();
  if (!o.kvm_host) o.kvm_host = MakeKvmHost();
  if (o.cache_dir.empty()) o.cache_dir = DefaultCacheDir();
  if (o.runtime_base.empty()) o.runtime_base = DefaultRuntimeBase();
}

// What the probed QEMU says about the spec: the machine type exists and takes that many CPUs
// (QEMU would refuse both only after starting).
void CheckAgainstMachine(const VmSpec& spec, const QemuCapabilities& caps) {
  if (caps.machine_cpu_max.empty()) return;  // capabilities given, not probed
  const std::string machine = spec.machine.empty() ? caps.default_machine : spec.machine;
  const auto it = caps.machine_cpu_max.find(machine);
  if (it == caps.machine_cpu_max.end()) {
    std::string aliases;
    for (const auto& [name, max] : caps.machine_cpu_max) {
      if (std::find(caps.machine_types.begin(), caps.machine_types.end(), name) ==
          caps.machine_types.end()) {
        aliases += (aliases.empty() ? "" : ", ") + name;
      }
    }
    throw UsageError("machine", "unknown machine type '" + machine + "'; valid: " + aliases +
                                    ", or a versioned type such as " + caps.default_machine);
  }
  if (it->second > 0 && spec.cpus > it->second) {
    throw UsageError("cpus", "invalid value '" + std::to_string(spec.cpus) + "'; valid: 1 to " +
                                 std::to_string(it->second) + " for machine type " + machine);
  }
}

// `work_dir` empty: a plan, which boots no probe guest (PlanVm).
Decisions Decide(const VmSpec& spec, VmOptions& o, const std::string& work_dir, VmTimings& timings,
                 std::vector<std::string>* planning_notes = nullptr) {
  Decisions d;
  d.qemu = FindQemu(spec.qemu);
  const ProbeCache cache(o.cache_dir);
  auto start = Clock::now();
  if (o.capabilities) {
    d.caps = *o.capabilities;
  } else {
    const ProbeResult probe = ProbeQemuCached(d.qemu, *o.runner, cache, o.stop.get());
    d.caps = probe.caps;
    if (planning_notes != nullptr && !probe.from_cache) {
      planning_notes->push_back("probed " + d.qemu +
                                " (it ran with -help, then -machine none over QMP; no guest)");
    }
  }
  timings.probe = Since(start);
  CheckAgainstMachine(spec, d.caps);
  start = Clock::now();
  if (spec.accel != AccelRequest::kTcg) {
    d.kvm = o.kvm_diagnosis ? *o.kvm_diagnosis
                            : DiagnoseKvmForQemu(d.qemu, *o.kvm_host, *o.runner, cache, work_dir,
                                                 o.stop.get(), !work_dir.empty());
    if (planning_notes != nullptr && d.kvm.functional_check_assumed) {
      planning_notes->push_back(
          "KVM taken as usable: /dev/kvm passes the device checks, but no probe guest was "
          "booted to prove it (a real start does)");
    }
  }
  timings.kvm_check = Since(start);
  if (planning_notes != nullptr && spec.accel == AccelRequest::kKvm && !d.kvm.usable) {
    // A plan asked for KVM is a plan for a host where KVM works: made, and the gap said.
    d.accel = {Accel::kKvm, std::string(DefaultCpuModel(Accel::kKvm)), ""};
    planning_notes->push_back("KVM is not usable here (" + d.kvm.summary +
                              "): this is the command line for a host where it is");
  } else {
    d.accel = ChooseAccel(spec.accel, d.kvm);
  }
  if (!spec.cpu_model.empty()) d.accel.cpu_model = spec.cpu_model;
  d.policy = MakeClockPolicy(spec.os, spec.clock_overrides);
  d.rendering = RenderClock(d.policy, d.caps, d.accel.accel, d.kvm.hv_unsupported);
  d.firmware_dirs =
      spec.firmware_dirs.empty() ? FirmwareDirsFor(d.qemu) : std::vector<std::string>{};
  d.hardware = ResolveHardware(spec);
  ResolveBootOrder(spec, d.hardware);
  if (d.hardware.firmware != Firmware::kBios) {
    d.firmware = FindFirmware(d.hardware.firmware, d.hardware.machine);
  }
  return d;
}

// QOM layouts (clock_verify.h) kept in the probe cache, per QEMU binary and command line.
constexpr std::size_t kMaxQomLayouts = 64;

// A stable key for a command line (FNV-1a, 64 bits, in hex): the same across runs and builds.
std::string QomLayoutKey(const std::vector<std::string>& argv) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const std::string& arg : argv) {
    for (unsigned char c : arg + '\0') hash = (hash ^ c) * 0x100000001b3ULL;
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

QomLayout LoadQomLayout(const ProbeCache& cache, const std::string& qemu, const std::string& key) {
  const std::optional<nlohmann::json> entry = cache.Load(qemu);
  if (!entry) return {};
  const auto layouts = entry->find("qom_layouts");
  if (layouts == entry->end() || !layouts->is_object()) return {};
  const auto it = layouts->find(key);
  return it == layouts->end() ? QomLayout{} : QomLayoutFromJson(*it);
}

void StoreQomLayout(const ProbeCache& cache, const std::string& qemu, const std::string& key,
                    const QomLayout& layout) {
  std::optional<nlohmann::json> entry = cache.Load(qemu);
  if (!entry) return;  // layouts ride along with a cached probe, never alone
  nlohmann::json& layouts = (*entry)["qom_layouts"];
  if (!layouts.is_object() || layouts.size() >= kMaxQomLayouts) layouts = nlohmann::json::object();
  layouts[key] = QomLayoutToJson(layout);
  cache.Store(qemu, *entry);
}

// Files a VM keeps in its state directory (spec.state_dir, else its runtime directory).
std::string VarsPath(const std::string& dir, Firmware firmware) {
  return dir + "/" + std::string(ToString(firmware)) + "-vars.fd";
}
constexpr char kTpmStateName[] = "tpm";
constexpr char kSwtpmSocketName[] = "swtpm.sock";
constexpr char kSwtpmLogName[] = "swtpm.log";

std::string DisplaySocketName(const DisplaySpec& display) {
  if (display.kind == DisplayKind::kSpice) return "spice.sock";
  if (display.kind == DisplayKind::kVnc && display.listen == "unix") return "vnc.sock";
  return "";
}

// The VM's own copy of the firmware's variable store: made from the template on the first
// run, kept (with what the guest wrote to it) in a state directory for the next.
// The state directory is checked first (EnsureSafeDir): this user's, writable by nobody else,
// so a name planted there by another user cannot be; and the copy never follows a link.
void EnsureVarsFile(const std::string& vars, const FirmwareImage& image) {
  const std::filesystem::path path(vars);
  const std::string dir = path.parent_path().string();
  EnsureSafeDir(dir, DirMode::kPrivate);
  struct stat st {};
  if (lstat(vars.c_str(), &st) == 0) {
    if (S_ISREG(st.st_mode)) return;  // kept from an earlier run, with what the guest wrote
    throw UnsafePath("state_dir", "'" + vars +
                                      "' is not a regular file; kvmrun will not hand it "
                                      "to QEMU as the VM's UEFI variable store");
  }
  try {
    CopyFileAtomically(image.vars_template, dir, path.filename().string(), 0600);
  } catch (const Error& e) {
    throw UsageError("state_dir", "cannot copy the UEFI variable store '" + image.vars_template +
                                      "' to '" + vars + "': " + e.what());
  }
}

// The guest agent's socket in the VM's runtime directory.
constexpr char kAgentSocketName[] = "agent.sock";

// Disks the guest can write to the files themselves (not to a temporary overlay).
std::vector<const DiskSpec*> WritableDisks(const VmSpec& spec) {
  std::vector<const DiskSpec*> disks;
  for (const DiskSpec& disk : spec.disks) {
    if (!disk.read_only) disks.push_back(&disk);
  }
  return disks;
}

SnapshotIdentity IdentityOf(const Vm& vm, const std::string& runtime_dir) {
  SnapshotIdentity id;
  id.qemu = vm.qemu();
  id.qemu_version = ToString(vm.capabilities().version);
  id.accel = ToString(vm.accel().accel);
  id.os = ToString(vm.spec().os);
  id.policy = vm.policy();
  id.argv = SnapshotArgv(vm.argv(), runtime_dir);
  for (const DiskSpec* disk : WritableDisks(vm.spec())) {
    if (!disk->snapshot) id.disks.push_back(DescribeDisk(disk->path));
  }
  id.agent = vm.spec().agent;
  return id;
}

// The argv of a VM restored from spec.restore_from: every writable disk behind a temporary
// overlay, and the snapshot's stream on the third passed descriptor (after QMP and console).
std::vector<std::string> RestoreArgv(const VmSpec& spec, const LaunchPlan& plan) {
  VmSpec restored = spec;
  for (DiskSpec& disk : restored.disks) disk.snapshot = disk.snapshot || !disk.read_only;
  std::vector<std::string> argv = BuildQemuArgv(restored, plan);
  argv.insert(argv.end(), {"-incoming", "fd:" + std::to_string(SpawnRequest::kFirstPassedFd + 2)});
  return argv;
}

// `runtime_dir` holds the sockets, `state_dir` what outlives a run (the same directory for a
// throwaway VM).
LaunchPlan MakePlan(const VmSpec& spec, const Decisions& d, const std::string& runtime_dir,
                    const std::string& state_dir) {
  LaunchPlan plan;
  plan.qemu = d.qemu;
  plan.accel = d.accel.accel;
  plan.cpu_model = d.accel.cpu_model;
  plan.clock = d.rendering;
  plan.firmware_dirs = d.firmware_dirs;
  plan.agent_socket = runtime_dir + "/" + kAgentSocketName;
  plan.hardware = d.hardware;
  if (d.firmware) {
    plan.firmware_code = d.firmware->code;
    plan.firmware_vars = VarsPath(state_dir, d.hardware.firmware);
    plan.firmware_requires_smm = d.firmware->requires_smm;
  }
  if (d.hardware.tpm) plan.tpm_socket = runtime_dir + "/" + kSwtpmSocketName;
  if (const std::string name = DisplaySocketName(spec.display); !name.empty()) {
    plan.display_socket = runtime_dir + "/" + name;
  }
  return plan;
}

// Opens the console log for writing. open() of a FIFO without a reader blocks until one comes;
// the wait happens here instead, where a stop request can end it.
UniqueFd OpenConsoleLog(const VmOptions& o) {
  bool told = false;
  while (true) {
    const int fd = open(o.console_log.c_str(),
                        O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0640);
    if (fd >= 0) {
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      return UniqueFd(fd);
    }
    if (errno != ENXIO) {
      throw UsageError("console_log", "'" + o.console_log + "': " + std::strerror(errno));
    }
    if (!told && o.on_notice) {
      o.on_notice("console log '" + o.console_log + "' is a FIFO with no reader; waiting for one");
    }
    told = true;
    const int stop_fd = o.stop ? o.stop->fd() : -1;
    pollfd p{stop_fd, POLLIN, 0};
    poll(&p, 1, 100);
    ThrowIfStopRequested(o.stop.get(), "while waiting for a reader of the console log");
  }
}

// Writes all of `bytes`; returns 0, or the errno of the failure.
int WriteFully(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EIO;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

// The last non-empty line of `text`.
std::string LastLine(const std::string& text) {
  std::size_t end = text.find_last_not_of("\r\n");
  if (end == std::string::npos) return "";
  const std::size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1,
                     end - (start == std::string::npos ? 0 : start + 1) + 1);
}

}  // namespace

// The console and stderr reader: one thread per VM, woken by data or by the wake pipe.
struct Vm::Io {
  UniqueFd console;
  UniqueFd stderr_read;
  UniqueFd console_file;
  UniqueFd wake_read;
  UniqueFd wake_write;
  std::thread thread;
  mutable std::mutex mu;
  std::string stderr_tail;
  LineSplitter stderr_lines;
  std::uint64_t console_log_bytes = 0;
  std::string console_log_error;  // the first failure to write the console log
  std::mutex console_write_mu;    // one WriteConsole at a time

  // Keeps the last kStderrTailBytes of QEMU's stderr; returns the lines `bytes` completed.
  std::vector<std::string> AppendStderr(std::string_view bytes) {
    std::vector<std::string> lines;
    std::lock_guard lock(mu);
    stderr_tail.append(bytes);
    if (stderr_tail.size() > kStderrTailBytes) {
      stderr_tail.erase(0, stderr_tail.size() - kStderrTailBytes);
    }
    stderr_lines.Push(bytes, [&](std::string line) { lines.push_back(std::move(line)); });
    return lines;
  }
};

// Events as QmpClient's reader thread hands them over (its event handler): recorded there, so
// that the reason QEMU gave for shutting down is never lost to a wait that came too late.
struct Vm::Events {
  void Record(const QmpEvent& event) {
    if (event.name == "STOP" || event.name == "RESUME") {
      std::lock_guard lock(mu);
      paused = event.name == "STOP";
      resumed = resumed || !paused;
      return;
    }
    if (event.name != "SHUTDOWN") return;
    std::string reason;
    if (const auto it = event.data.find("reason"); it != event.data.end() && it->is_string()) {
      reason = it->get<std::string>();
    }
    std::lock_guard lock(mu);
    if (!shutdown_reason) shutdown_reason = std::move(reason);
  }
  std::string ShutdownReason() {
    std::lock_guard lock(mu);
    return shutdown_reason.value_or("");
  }

  bool Paused() {
    std::lock_guard lock(mu);
    return paused;
  }
  // Whether the guest may not be running: paused since, or never resumed (QEMU starts with -S
  // and sends no STOP for it).
  bool MayNotRun() {
    std::lock_guard lock(mu);
    return paused || !resumed;
  }

  std::mutex mu;
  std::optional<std::string> shutdown_reason;  // the first SHUTDOWN's
  bool paused = false;                         // the last of STOP and RESUME was STOP
  bool resumed = false;                        // a RESUME came
};

Vm::Vm() : console_(std::make_unique<ConsoleLog>()), events_(std::make_shared<Events>()) {}

Vm::~Vm() {
  if (process_ && !exit_status_) {
    try {
      Shutdown(0ms);
    } catch (...) {
      // A destructor must not throw; Kill() below is the last resort.
    }
    Kill();
  }
  StopIo();
  if (exit_status_) RemovePublicSocket();
  qmp_.reset();
  process_.reset();
  // swtpm ends by itself once QEMU has closed its connection (--terminate); a QEMU that never
  // connected leaves it to be killed here.
  if (swtpm_ && !swtpm_->Wait(options_.step_timeout)) swtpm_->Signal(SIGKILL);
  swtpm_.reset();
}

pid_t Vm::pid() const { return process_ ? process_->pid() : -1; }

const std::string& Vm::runtime_dir() const {
  static const std::string kNone;
  return runtime_ ? runtime_->path() : kNone;
}

std::unique_ptr<Vm> Vm::Start(const VmSpec& given, VmOptions options) {
  const auto start = Clock::now();
  const VmSpec spec = WithAbsolutePaths(given);
  ValidateVmSpec(spec);
  std::unique_ptr<Vm> vm(new Vm());
  vm->spec_ = spec;
  // A snapshot that cannot be restored is refused before anything runs.
  if (!spec.restore_from.empty()) vm->restored_from_ = ReadSnapshotHeader(spec.restore_from);
  vm->options_ = std::move(options);
  VmOptions& o = vm->options_;
  FillDefaults(o);
  for (const DiskSpec& disk : spec.disks) {
    if (!disk.format_given && disk.format == DiskFormat::kRaw && HasQcow2Header(disk.path) &&
        o.on_notice) {
      o.on_notice("disk '" + disk.path +
                  "' starts with a qcow2 header but is opened as raw: kvmrun never takes the "
                  "format from an image's content (a guest writes it); add ,format=qcow2 if "
                  "you made it as qcow2");
    }
  }

  // A kvmrun killed with SIGKILL could not remove its directory (its QEMU died with it).
  RemoveStaleRuntimeDirs(o.runtime_base);
  vm->runtime_ =
      std::make_unique<RuntimeDir>(o.runtime_dir.empty() ? RuntimeDir::Create(o.runtime_base)
                                                         : RuntimeDir::Borrow(o.runtime_dir));
  Decisions d = Decide(spec, o, vm->runtime_->path(), vm->timings_);
  if (!d.accel.notice.empty() && o.on_notice) o.on_notice(d.accel.notice);
  vm->qemu_ = d.qemu;
  vm->caps_ = d.caps;
  vm->kvm_ = d.kvm;
  vm->accel_ = d.accel;
  vm->policy_ = d.policy;
  vm->rendering_ = d.rendering;

  vm->hardware_ = d.hardware;

  auto [qmp_ours, qmp_theirs] = MakeSocketPair();
  auto [console_ours, console_theirs] = MakeSocketPair();
  auto [err_read, err_write] = MakePipe();
  const std::string state_dir = spec.state_dir.empty() ? vm->runtime_->path() : spec.state_dir;
  const LaunchPlan plan = MakePlan(spec, d, vm->runtime_->path(), state_dir);
  // Every socket kvmrun names lives in the runtime directory, whose path must leave room.
  for (const std::string& socket : {plan.agent_socket, plan.tpm_socket, plan.display_socket}) {
    constexpr std::size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;
    if (socket.size() > kMaxSocketPath) {
      throw UsageError("runtime_base", "'" + o.runtime_base + "' is too long for the socket '" +
                                           socket + "' in it (" + std::to_string(socket.size()) +
                                           " of " + std::to_string(kMaxSocketPath) + " bytes)");
    }
  }
  if (spec.agent) vm->agent_socket_ = plan.agent_socket;
  if (!spec.state_dir.empty() && (d.firmware || d.hardware.tpm)) {
    // The guest's secrets live here (its UEFI variables, its TPM): the user's eyes only.
    std::error_code ec;
    if (std::filesystem::create_directories(spec.state_dir, ec)) {
      std::filesystem::permissions(spec.state_dir, std::filesystem::perms::owner_all, ec);
    }
    if (ec) {
      throw UsageError("state_dir", "cannot create '" + spec.state_dir + "': " + ec.message());
    }
  }
  if (d.firmware) EnsureVarsFile(plan.firmware_vars, *d.firmware);
  for (const PortForward& forward : spec.forwards) {
    if (!IsLoopbackAddress(forward.host_address) && o.on_notice) {
      o.on_notice("port forward " + ToString(forward) + " listens on " + forward.host_address +
                  ": reachable from the network, not only from this host");
    }
  }
  if (spec.display.kind == DisplayKind::kVnc && !spec.display.listen.empty() &&
      spec.display.listen != "unix" && !IsLoopbackAddress(spec.display.listen) && o.on_notice) {
    o.on_notice("VNC listens on " + spec.display.listen +
                ", reachable from the network: its password is VNC's own 8-character "
                "authentication, and the screen travels unencrypted");
  }
  vm->argv_ = BuildQemuArgv(spec, plan);
  vm->identity_ = IdentityOf(*vm, vm->runtime_->path());

  UniqueFd state;  // the snapshot's stream, positioned after its header
  if (vm->restored_from_) {
    CheckSnapshotMatches(*vm->restored_from_, vm->identity_, spec.restore_from);
    state = OpenRegularFile(spec.restore_from, FinalLink::kFollow);
    if (lseek(state.get(), kSnapshotHeaderBytes, SEEK_SET) < 0) {
      throw UsageError("snapshot '" + spec.restore_from + "' cannot be read: " + Errno());
    }
    vm->argv_ = RestoreArgv(spec, plan);
  }

  vm->io_ = std::make_unique<Io>();
  if (!o.console_log.empty()) vm->io_->console_file = OpenConsoleLog(o);
  if (!plan.tpm_socket.empty()) {
    vm->swtpm_ = StartSwtpm(*o.runner,
                            {state_dir + "/" + kTpmStateName, plan.tpm_socket,
                             vm->runtime_->path() + "/" + kSwtpmLogName},
                            o.stop.get(), o.qmp_timeout);
  }

  SpawnRequest request = QemuSpawnRequest(vm->qemu_, {});
  request.argv = vm->argv_;
  request.pass_fds = {qmp_theirs.get(), console_theirs.get()};  // kQmpFd, kConsoleFd
  if (state.get() >= 0) request.pass_fds.push_back(state.get());
  request.stderr_fd = err_write.get();
  auto spawn_start = Clock::now();
  vm->process_ = o.runner->Spawn(request);
  // The snapshot's checksum is checked while QEMU loads it; the guest runs only if it held.
  std::future<void> checked;
  if (vm->restored_from_) {
    checked = std::async(std::launch::async, VerifySnapshotChecksum, spec.restore_from,
                         *vm->restored_from_);
  }
  vm->timings_.spawn = Since(spawn_start);
  qmp_theirs.Reset();
  console_theirs.Reset();
  err_write.Reset();
  state.Reset();

  vm->io_->console = std::move(console_ours);
  vm->io_->stderr_read = std::move(err_read);
  vm->StartIo();

  // The greeting comes when QEMU is ready; a QEMU that hangs before it can still be stopped.
  const bool greeted =
      WaitForFd(qmp_ours.get(), POLLIN, o.qmp_timeout, o.stop.get(), "while QEMU was starting");
  try {
    if (!greeted)
      throw QmpTimeout("no QMP greeting within " + std::to_string(o.qmp_timeout.count()) + " ms");
    vm->qmp_ = std::make_unique<QmpClient>(AdoptQmpSocket(qmp_ours.Release()), o.qmp_timeout);
    vm->qmp_->SetEventHandler(
        [events = vm->events_](const QmpEvent& event) { events->Record(event); });
  } catch (const Error& e) {
    if (vm->restored_from_) {
      // QEMU ends during the handshake when the stream it loads is bad ("Illegal RAM offset"):
      // the file's fault, like a checksum that fails, whichever of the two comes first.
      try {
        checked.get();
      } catch (const UsageError&) {
        vm.reset();
        throw;
      } catch (const Error&) {
      }
      try {
        vm->FailStart("cannot restore '" + spec.restore_from + "': QEMU did not start (" +
                      e.what() + ")");
      } catch (const VmError& failed) {
        throw UsageError(failed.what());
      }
    }
    vm->FailStart(std::string("QEMU did not start (") + e.what() + ")");
  }
  vm->timings_.qmp_ready = Since(spawn_start);
  if (vm->restored_from_) {
    const auto incoming_start = Clock::now();
    try {
      WaitForIncoming(*vm->qmp_, std::chrono::minutes(10));
      checked.get();
    } catch (const UsageError&) {
      vm.reset();  // tears QEMU down before the caller hears about it
      throw;
    } catch (const Error& e) {
      // A state this QEMU cannot load is bad input, like a truncated file.
      try {
        vm->FailStart("cannot restore '" + spec.restore_from + "': " + e.what());
      } catch (const VmError& failed) {
        throw UsageError(failed.what());
      }
    }
    vm->timings_.incoming = Since(incoming_start);
  }

  vm->ReadHardwareBack(plan.display_socket);

  if (spec.verify != VerifyMode::kOff) {
    const auto verify_start = Clock::now();
    ClockReadback readback;
    try {
      // Where the timers are in this VM's QOM tree, as an earlier VM of the same binary and
      // command line showed (checked, not trusted); a walk otherwise, remembered.
      const ProbeCache cache(o.cache_dir);
      const std::string layout_key = QomLayoutKey(SnapshotArgv(vm->argv_, vm->runtime_->path()));
      const QomLayout known = LoadQomLayout(cache, vm->qemu_, layout_key);
      QomLayout layout = known;
      readback = ReadClockState(*vm->qmp_, o.host_clock, {&layout, vm->accel_.accel});
      if (layout.usable() && !(layout == known)) {
        StoreQomLayout(cache, vm->qemu_, layout_key, layout);
      }
    } catch (const Error& e) {
      vm->FailStart(std::string("reading the clock state back failed (") + e.what() + ")");
    }
    vm->report_ = CompareClock(vm->policy_, vm->rendering_, readback, o.host_clock);
    vm->timings_.verify = Since(verify_start);
    if (!vm->report_->ok()) {
      if (spec.verify == VerifyMode::kEnforce) {
        ClockReport report = *vm->report_;
        vm.reset();  // tears QEMU down before the caller hears about it
        throw ClockMismatchError(std::move(report));
      }
      if (o.on_notice) {
        o.on_notice("clock verification found " + std::to_string(vm->report_->Mismatches().size()) +
                    " mismatch(es); continuing because verification is set to warn");
      }
    }
  }
  vm->timings_.start = Since(start);
  return vm;
}

namespace {

// `length` letters and digits from the kernel's random source.
std::string RandomPassword(std::size_t length) {
  static constexpr char kAlphabet[] =
      "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";  // no 0/O, 1/l/I
  std::string password;
  while (password.size() < length) {
    unsigned char byte = 0;
    if (getrandom(&byte, 1, 0) != 1) continue;
    if (byte >= 256 / (sizeof(kAlphabet) - 1) * (sizeof(kAlphabet) - 1)) continue;  // no bias
    password += kAlphabet[byte % (sizeof(kAlphabet) - 1)];
  }
  return password;
}

}  // namespace

// What QMP can see of the hardware: the TPM QEMU made, and where the display listens.
void Vm::ReadHardwareBack(const std::string& display_socket) {
  const auto ask = [&](const char* command) {
    try {
      return qmp_->Execute(command);
    } catch (const Error& e) {
      FailStart(std::string("'") + command + "' failed (" + e.what() + ")");
    }
  };
  if (hardware_.tpm) {
    const nlohmann::json tpms = ask("query-tpm");
    const bool found = tpms.is_array() && std::any_of(tpms.begin(), tpms.end(), [](const auto& t) {
                         return t.value("id", "") == "kvmrun-tpm0";
                       });
    if (!found) FailStart("QEMU has no TPM ('query-tpm' answered " + tpms.dump() + ")");
  }
  switch (spec_.display.kind) {
    case DisplayKind::kNone:
      break;
    case DisplayKind::kVnc: {
      const nlohmann::json vnc = ask("query-vnc");
      if (!vnc.value("enabled", false)) FailStart("QEMU's VNC server is not enabled");
      if (vnc.value("family", "") == "unix") {
        display_ = "vnc unix:" + display_socket;  // (QEMU reports no path for it)
        break;
      }
      display_ =
          "vnc " + vnc.value("host", std::string()) + ":" + vnc.value("service", std::string());
      // VNC's own authentication: 8 characters at most, sent before the guest runs.
      display_password_ = RandomPassword(8);
      try {
        qmp_->Execute("set_password", {{"protocol", "vnc"}, {"password", display_password_}});
      } catch (const Error& e) {
        FailStart(std::string("setting the VNC password failed (") + e.what() + ")");
      }
      break;
    }
    case DisplayKind::kSpice: {
      const nlohmann::json spice = ask("query-spice");
      if (!spice.value("enabled", false)) FailStart("QEMU's SPICE server is not enabled");
      display_ = "spice unix:" + display_socket;
      break;
    }
    case DisplayKind::kGtk:
      display_ = "gtk";
      break;
  }
}

std::string Vm::SnapshotRefusal() const {
  if (swtpm_) {
    return "the VM has a TPM, whose state lives in swtpm and is not saved with the snapshot";
  }
  for (const DiskSpec* disk : WritableDisks(spec_)) {
    if (disk->snapshot || restored_from_) {
      return "the writes to disk '" + disk->path +
             "' go to a temporary overlay that ends with this QEMU, so a restore would see the "
             "disk without them (" +
             (restored_from_ ? "the VM was itself restored"
                             : "a disk whose writes are thrown away") +
             ")";
    }
  }
  return "";
}

SnapshotSaveResult Vm::SaveSnapshot(const std::string& path, std::chrono::milliseconds timeout) {
  const std::string refusal = SnapshotRefusal();
  if (!refusal.empty()) throw UsageError("cannot save a snapshot of this VM: " + refusal);
  return kvmrun::SaveSnapshot(*qmp_, identity_, path, timeout);
}

void Vm::FailStart(const std::string& what) {
  // QEMU that rejects its arguments exits by itself; give it a moment so its stderr says why.
  bool killed = false;
  if (process_ && !exit_status_) {
    if (auto status = process_->Wait(options_.step_timeout)) {
      exit_status_ = status;
    } else {
      Kill();
      killed = true;
    }
  }
  StopIo();
  const std::string tail = StderrTail();
  const std::string last = LastLine(tail);
  std::string message;
  if (exit_status_ && !killed) {
    // QEMU ended by itself: its own words are the cause, what kvmrun was doing the detail.
    message = "QEMU exited (" + exit_status_->ToString() + ")";
    if (!last.empty()) message += ": " + last;
    message += "; " + what;
  } else {
    message = what;
    if (exit_status_) message += "; QEMU " + exit_status_->ToString();
    if (!last.empty()) message += ": " + last;
  }
  throw VmError(message, argv_, tail, console_->Tail());
}

void Vm::Kill() {
  if (!process_ || exit_status_) return;
  process_->Signal(SIGKILL);
  exit_status_ = process_->Wait(10s);
}

void Vm::StartIo() {
  auto [wake_read, wake_write] = MakePipe();
  io_->wake_read = std::move(wake_read);
  io_->wake_write = std::move(wake_write);
  io_->thread = std::thread([this] {
    // A console log or console callback writing to a pipe whose reader went away gets EPIPE
    // instead of a SIGPIPE that would kill the process (this thread only: the signal is
    // directed at the thread that wrote).
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
    Io& io = *io_;
    pollfd fds[3] = {{io.console.get(), POLLIN, 0},
                     {io.stderr_read.get(), POLLIN, 0},
                     {io.wake_read.get(), POLLIN, 0}};
    bool draining = false;  // woken: read what is left without waiting, then stop
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
      const int ready = poll(fds, 3, draining ? 0 : -1);
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) break;
      if (fds[2].revents & POLLIN) {
        draining = true;
        fds[2].fd = -1;
      }
      // 16 KiB: a console line is at most 4 KiB, and every touched page of a thread's stack
      // stays resident for the VM's life (20 VMs from one process, 20 of these threads).
      char buffer[16384];
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
          fds[i].fd = -1;
          continue;
        }
        const std::string_view bytes(buffer, static_cast<std::size_t>(n));
        if (i == 0) {
          console_->Append(bytes);
          if (options_.on_console) options_.on_console(bytes);
          if (io.console_file.get() >= 0) WriteConsoleLog(bytes);
          continue;
        }
        const std::vector<std::string> lines = io.AppendStderr(bytes);
        if (options_.on_qemu_stderr) {
          for (const std::string& line : lines) options_.on_qemu_stderr(line);
        }
      }
    }
    console_->Close();
  });
}

void Vm::StopIo() {
  if (!io_ || !io_->thread.joinable()) return;
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = write(io_->wake_write.get(), &byte, 1);
  io_->thread.join();
}

void Vm::WriteConsoleLog(std::string_view bytes) {
  Io& io = *io_;
  const int err = WriteFully(io.console_file.get(), bytes);
  std::string failure;
  {
    std::lock_guard lock(io.mu);
    if (err == 0) {
      io.console_log_bytes += bytes.size();
      return;
    }
    // Nothing more is written: a log with a hole in the middle would mislead.
    io.console_file.Reset();
    io.console_log_error = "writing the console log '" + options_.console_log + "' failed after " +
                           std::to_string(io.console_log_bytes) + " bytes: " + std::strerror(err);
    failure = io.console_log_error;
  }
  if (options_.on_notice) options_.on_notice(failure + "; the rest of the console is not saved");
}

std::string Vm::ConsoleLogError() const {
  if (!io_) return "";
  std::lock_guard lock(io_->mu);
  return io_->console_log_error;
}

std::string Vm::StderrTail() const {
  if (!io_) return "";
  std::lock_guard lock(io_->mu);
  return io_->stderr_tail;
}

void Vm::Continue() {
  const auto start = Clock::now();
  qmp_->Execute("cont");
  timings_.cont = Since(start);
}

bool Vm::WaitForViewer(StopRequests* stop) {
  const char* event = spec_.display.kind == DisplayKind::kVnc     ? "VNC_INITIALIZED"
                      : spec_.display.kind == DisplayKind::kSpice ? "SPICE_INITIALIZED"
                                                                  : nullptr;
  if (event == nullptr) {
    throw UsageError("waiting for a viewer needs a VNC or SPICE display; this VM's is " +
                     std::string(ToString(spec_.display.kind)));
  }
  while (true) {
    if (stop != nullptr && stop->Pending()) return false;
    if (WaitForExit(0ms)) {
      throw VmError("QEMU " + exit_status_->ToString() + " while the guest waited for a viewer",
                    argv_, StderrTail());
    }
    try {
      // Events queue until taken: a viewer that came before this wait is seen at once.
      qmp_->WaitForEvent(event, 250ms);
      return true;
    } catch (const QmpTimeout&) {
    }
  }
}

void Vm::Pause() { qmp_->Execute("stop"); }

std::unique_ptr<GuestAgent> Vm::ConnectAgent(std::chrono::milliseconds timeout) {
  return ConnectGuestAgent(agent_socket_, timeout);
}

GuestExecResult Vm::Exec(const GuestExecRequest& request, std::chrono::milliseconds agent_timeout) {
  return ConnectAgent(agent_timeout)->Exec(request);
}

void Vm::SignalQemu(int signal) {
  if (process_ && !exit_status_) process_->Signal(signal);
}

void Vm::Resume(MissedTicks missed) {
  if (missed == MissedTicks::kDrop) qmp_->Execute("rtc-reset-reinjection");
  qmp_->Execute("cont");
}

void Vm::WriteConsole(std::string_view bytes, std::chrono::milliseconds timeout) {
  // `timeout` bounds a time without progress, not the whole write: a paste of 100 KB into a
  // guest that reads at the serial line's pace is slow, not stuck.
  auto deadline = Clock::now() + timeout;
  const auto fail = [&](const std::string& why) {
    throw VmError("cannot write to the guest's console: " + why, argv_, StderrTail(),
                  console_->Tail());
  };
  if (!io_ || io_->console.get() < 0) fail("the VM has no console");
  std::lock_guard lock(io_->console_write_mu);
  while (!bytes.empty()) {
    // Never blocks, and never raises SIGPIPE: the guest may stop reading, QEMU may exit.
    const ssize_t n =
        send(io_->console.get(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      deadline = Clock::now() + timeout;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) fail("the VM has exited");
    if (n < 0 && errno != EAGAIN) fail(std::string("send: ") + Errno());
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd fd = {io_->console.get(), POLLOUT, 0};
    if (left <= 0ms || poll(&fd, 1, static_cast<int>(left.count())) == 0) {
      fail("the guest has not read its console for " + std::to_string(timeout.count()) + " ms (" +
           std::to_string(bytes.size()) + " bytes left)");
    }
  }
}

ConsoleMatch Vm::SendConsole(std::string_view text, const ConsolePattern& expect,
                             std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  console_->ConsumeAll();
  WriteConsole(text, timeout);
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  return console_->WaitFor(expect, std::max(left, 0ms));
}

ConsoleMatch Vm::WaitForConsole(const ConsolePattern& pattern, std::chrono::milliseconds timeout) {
  return console_->WaitFor(pattern, timeout);
}

std::optional<ExitStatus> Vm::WaitForExit(std::chrono::milliseconds timeout, int interrupt_fd) {
  const auto deadline = Clock::now() + timeout;
  while (!exit_status_) {
    if (auto status = process_->Wait(0ms)) {
      exit_status_ = status;
      break;
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= 0ms) return std::nullopt;
    // Without an exit descriptor (a fake process), look again every few milliseconds.
    const int exit_fd = process_->exit_fd();
    pollfd fds[2] = {{exit_fd, POLLIN, 0}, {interrupt_fd, POLLIN, 0}};
    const int wait_ms = exit_fd >= 0 ? static_cast<int>(std::min<long long>(left.count(), 1 << 30))
                                     : static_cast<int>(std::min<long long>(left.count(), 10));
    if (poll(fds, 2, wait_ms) > 0 && interrupt_fd >= 0 && (fds[1].revents & POLLIN)) {
      return std::nullopt;
    }
  }
  StopIo();
  RemovePublicSocket();
  return exit_status_;
}

void Vm::RemovePublicSocket() {
  // QEMU removes its listening socket when it exits cleanly, not when it is killed.
  struct stat st {};
  if (!spec_.qmp_socket.empty() && lstat(spec_.qmp_socket.c_str(), &st) == 0 &&
      S_ISSOCK(st.st_mode)) {
    unlink(spec_.qmp_socket.c_str());
  }
}

ShutdownResult Vm::Shutdown(std::chrono::milliseconds grace, StopRequests* stop) {
  const auto start = Clock::now();
  std::string note;
  const auto done = [&](ShutdownStep step) {
    timings_.shutdown = Since(start);
    return ShutdownResult{*exit_status_, step, note};
  };
  if (exit_status_ || WaitForExit(0ms)) return done(ShutdownStep::kAlreadyExited);
  // A stop request while the ladder runs means "now": the remaining steps are skipped.
  bool hurry = false;
  const auto exited_within = [&](std::chrono::milliseconds wait) {
    if (hurry) return false;
    if (WaitForExit(wait, stop != nullptr ? stop->fd() : -1)) return true;
    hurry = stop != nullptr && stop->Take().has_value();
    return false;
  };
  const auto ask = [&](const char* command) {
    if (hurry) return;
    try {
      qmp_->Execute(command, nullptr, options_.step_timeout);
    } catch (const Error&) {
      // QEMU may close the connection as it exits, or be too stuck to answer: the next step
      // of the ladder deals with it.
    }
  };
  bool hear = grace > 0ms && qmp_ != nullptr;
  if (hear) {
    // Pressed first: a paused guest finds it pressed once it runs. Its reply comes after every
    // event QEMU sent before it, so the events now say whether the guest runs; one that may
    // not (never resumed, or paused since: a save, a QMP stop) is looked at, and made to hear
    // the button where that is safe (power_button.h).
    ask("system_powerdown");
    if (events_->MayNotRun()) {
      try {
        const PowerButtonReadiness ready = ReadyForPowerButton(*qmp_, options_.step_timeout);
        hear = ready.can_hear;
        note = ready.note;
      } catch (const Error&) {
        // QEMU is going, or too stuck to answer: the ladder goes on as for a running guest.
      }
    }
  }
  if (hear) {
    const auto asked = Clock::now();
    // The power button first; a guest that answers it is done within a second or so.
    if (exited_within(std::min(grace / 2, std::chrono::milliseconds(1500)))) {
      return done(ShutdownStep::kPowerdown);
    }
    if (!hurry && !agent_socket_.empty() && AskAgentToPowerOff()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(grace - (Clock::now() - asked));
      if (exited_within(std::max(left, 0ms))) return done(ShutdownStep::kAgentPowerdown);
    } else {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(grace - (Clock::now() - asked));
      if (exited_within(std::max(left, 0ms))) return done(ShutdownStep::kPowerdown);
    }
  }
  if (qmp_) {
    ask("quit");
    if (exited_within(options_.step_timeout)) return done(ShutdownStep::kQuit);
  }
  if (!hurry) {
    process_->Signal(SIGTERM);
    if (exited_within(options_.step_timeout)) return done(ShutdownStep::kTerminate);
  }
  process_->Signal(SIGKILL);
  if (WaitForExit(10s)) return done(ShutdownStep::kKill);
  throw VmError("QEMU (pid " + std::to_string(pid()) + ") survived SIGKILL", argv_, StderrTail());
}

bool Vm::PausedByEvent() const { return events_->Paused(); }

bool Vm::AskAgentToPowerOff() {
  std::unique_ptr<GuestAgent> agent;
  try {
    agent = ConnectAgent(1s);
  } catch (const Error&) {
    return false;  // no agent answers (none in the guest, or another client holds the port)
  }
  try {
    // qemu-ga powers the guest off through its own shutdown command and sends no reply on
    // success: the port going quiet or closing is the expected answer.
    agent->Execute("guest-shutdown", {{"mode", "powerdown"}}, 1s);
  } catch (const GuestAgentError&) {
    return false;  // the guest refused (no shutdown command in it)
  } catch (const Error&) {
    // No answer, or the port closed: asked, and shutting down.
  }
  return true;
}

std::string Vm::ShutdownReason() {
  if (const std::string reason = events_->ShutdownReason(); !reason.empty()) return reason;
  if (exit_status_ && qmp_) {
    try {
      // QEMU has exited, so everything it sent is in the socket and the read ends at its EOF;
      // whichever thread reads it hands the SHUTDOWN event to the handler, which records it.
      // The wait only bounds a reader another thread holds, which a loaded host can starve
      // for seconds: long, so that a lost reason never looks like a crash.
      qmp_->WaitForEvent("SHUTDOWN",
                         std::max(options_.step_timeout, std::chrono::milliseconds(30000)));
    } catch (const Error&) {
      // No SHUTDOWN event: QEMU crashed or was killed.
    }
  }
  return events_->ShutdownReason();
}

VmPlan PlanVm(const VmSpec& given, VmOptions options) {
  const VmSpec spec = WithAbsolutePaths(given);
  ValidateVmSpec(spec);
  ValidateVmName(spec.name);  // it names the plan's sockets, as a named VM's directory
  // Sockets with fixed names go where the caller said, else into the user's private runtime
  // base, never into a shared /tmp, where another user could be listening first (an
  // unauthenticated SPICE socket, a QMP monitor). ".commands" cannot be a VM's name.
  const std::string socket_dir =
      options.runtime_base.empty() ? DefaultNamedVmBase() + "/.commands" : options.runtime_base;
  // The default one is made (private, and checked), so that the command runs as pasted; one the
  // caller named is the caller's to make.
  if (options.runtime_base.empty()) EnsureSafeDir(socket_dir, DirMode::kPrivate);
  FillDefaults(options);
  VmTimings timings;
  VmPlan plan;
  const Decisions d = Decide(spec, options, "", timings, &plan.notes);
  if (!d.accel.notice.empty()) plan.notes.push_back(d.accel.notice);
  if (spec.restore_from.empty()) {
    // A command line to paste: its sockets beside the runtime directories, named after the VM.
    const std::string prefix = socket_dir + "/" + spec.name;
    const std::string state_dir = spec.state_dir.empty() ? prefix + ".state" : spec.state_dir;
    LaunchPlan launch = MakePlan(spec, d, prefix + ".run", state_dir);
    launch.agent_socket = prefix + ".agent.sock";
    launch.standalone_qmp_socket = prefix + ".qmp.sock";
    if (!launch.tpm_socket.empty()) launch.tpm_socket = prefix + ".swtpm.sock";
    if (!launch.display_socket.empty()) {
      launch.display_socket = prefix + "." + DisplaySocketName(spec.display);
    }
    plan.argv = BuildQemuArgv(spec, launch);
    if (d.firmware && access(launch.firmware_vars.c_str(), F_OK) != 0) {
      plan.notes.push_back("UEFI keeps its variables in " + launch.firmware_vars +
                           ", which does not exist yet; first: install -m 600 " +
                           d.firmware->vars_template + " " + launch.firmware_vars);
    }
    if (spec.display.kind == DisplayKind::kVnc && spec.display.listen != "unix") {
      plan.notes.push_back("VNC asks for a password, which kvmrun would set; set one over QMP at " +
                           launch.standalone_qmp_socket +
                           ": set_password {\"protocol\": \"vnc\", \"password\": \"8-CHARS\"}");
    }
    if (!launch.tpm_socket.empty()) {
      const std::string swtpm = FindExecutable("swtpm");
      plan.notes.push_back("the TPM is swtpm's; first: mkdir -p " + state_dir + "/" +
                           kTpmStateName + " && " +
                           ShellJoin(SwtpmArgv(swtpm.empty() ? "swtpm" : swtpm,
                                               {state_dir + "/" + kTpmStateName, launch.tpm_socket,
                                                prefix + ".swtpm.log"})) +
                           " &");
    }
    plan.notes.push_back(
        "a command to run without kvmrun: the console on its terminal, QMP at " +
        launch.standalone_qmp_socket +
        (spec.agent ? ", the guest agent at " + launch.agent_socket : std::string()) +
        "; not paused, so nothing checks the clocks before the guest runs (a verify against "
        "that QMP socket and the " +
        std::string(ToString(spec.os)) +
        " policy can); the sockets' directory must be yours alone: mkdir -p -m 700 " + socket_dir);
  } else {
    // No runtime directory exists for a plan: the agent's socket is shown where it would be.
    const LaunchPlan launch =
        MakePlan(spec, d, "$RUNTIME_DIR", spec.state_dir.empty() ? "$RUNTIME_DIR" : spec.state_dir);
    ReadSnapshotHeader(spec.restore_from);  // a file that is no snapshot is refused here too
    plan.argv = RestoreArgv(spec, launch);
    plan.notes.push_back(
        "the command kvmrun runs: fd 3 and 4 stand for its QMP and console sockets, and fd 5 "
        "for the snapshot's stream; whether it belongs to this VM "
        "(QEMU version, accelerator, command line, disks) is checked when it "
        "runs");
  }
  return plan;
}

}  // namespace kvmrun

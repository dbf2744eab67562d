// kvmrun::Vm: one QEMU/KVM virtual machine, owned from start to exit.
//
//   auto vm = kvmrun::Vm::Start(spec);          // QEMU runs paused; clocks read back and verified
//   vm->Continue();                             // the guest starts
//   vm->WaitForConsole(kvmrun::ConsolePattern("login:"), 60s);
//   vm->Shutdown();                             // powerdown, quit, SIGTERM, SIGKILL
//
// Start() finds QEMU, probes it (cached), decides the accelerator (KVM when usable, else TCG
// with a notice), renders the clock policy for that QEMU, starts QEMU paused (-S) with a
// private QMP connection and the serial console on inherited sockets, reads the clock state
// back and, unless spec.verify is kOff, compares it with the policy. With kEnforce a mismatch
// tears the VM down and throws ClockMismatchError; with kWarn it is reported as a notice.
//
// Errors: UsageError for bad input (nothing was started), VmError when QEMU fails to start or
// dies (with the argv, QEMU's stderr tail and the console tail), ClockMismatchError, and the
// QMP errors of qmp_client.h when the VM is driven through qmp().
//
// Lifetime: destroying a Vm stops QEMU if it still runs (quit, then SIGTERM, then SIGKILL)
// and removes its runtime directory. QEMU is also killed when the process exits, however it
// exits (SIGKILL included), and only then: the thread that called Start() may end while the VM
// runs on (docs/launcher.md, "Threads").
//
// Threading: Continue, Shutdown, WaitFor* and qmp() may be called from different threads; the
// console callbacks run on the VM's I/O thread.
#ifndef KVMRUN_VM_H_
#define KVMRUN_VM_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/clock_verify.h"
#include "kvmrun/console.h"
#include "kvmrun/guest_agent.h"
#include "kvmrun/hardware_profile.h"
#include "kvmrun/kvm_diagnosis.h"
#include "kvmrun/process.h"
#include "kvmrun/qmp_client.h"
#include "kvmrun/snapshot.h"
#include "kvmrun/stop_requests.h"
#include "kvmrun/vm_spec.h"

namespace kvmrun {

struct VmOptions {
  std::shared_ptr<ProcessRunner> runner;  // default: MakeProcessRunner()
  std::shared_ptr<KvmHost> kvm_host;      // default: MakeKvmHost()
  std::string cache_dir;                  // default: DefaultCacheDir()
  std::string runtime_base;               // default: DefaultRuntimeBase()
  // An existing private directory to use as the VM's runtime directory instead of a fresh one
  // under runtime_base (a named VM's, vm_registry.h). Not removed by the Vm.
  std::string runtime_dir;
  // Known facts that skip the probes (embedders that probed already, tests).
  std::optional<QemuCapabilities> capabilities;
  std::optional<KvmDiagnosis> kvm_diagnosis;

  // Called on the VM's I/O thread with console bytes as they arrive.
  std::function<void(std::string_view)> on_console;
  // Called on the VM's I/O thread with each line QEMU writes to stderr.
  std::function<void(std::string_view)> on_qemu_stderr;
  // kvmrun's notices: the TCG fallback, a verification warning. One line each.
  std::function<void(std::string_view)> on_notice;
  // The console is also written to this file (created or truncated; a FIFO is waited for
  // until it has a reader). A write that fails (ENOSPC, EPIPE) ends the log and is reported
  // by on_notice and ConsoleLogError(); the VM runs on.
  std::string console_log;
  // Requests that end Start() (QEMU torn down, Interrupted thrown) wherever it waits: the
  // probes, a FIFO console log, a QEMU that has not greeted yet. See stop_requests.h.
  std::shared_ptr<StopRequests> stop;

  std::chrono::milliseconds qmp_timeout{10000};
  // How long each step of the stop ladder after powerdown (quit, SIGTERM, SIGKILL) may take,
  // and how long a QEMU failing at start gets to exit and say why.
  std::chrono::milliseconds step_timeout{3000};
  HostClock host_clock = SystemHostClock();
};

// Where the time of Start() and the rest of a VM's life went, in microseconds.
struct VmTimings {
  std::chrono::microseconds probe{0};      // capability probe (or cache read)
  std::chrono::microseconds kvm_check{0};  // KVM diagnosis
  std::chrono::microseconds spawn{0};      // fork + exec of QEMU
  std::chrono::microseconds qmp_ready{0};  // from spawn to the end of the QMP handshake
  std::chrono::microseconds incoming{0};   // loading a snapshot (spec.restore_from)
  std::chrono::microseconds verify{0};     // clock read-back and comparison
  std::chrono::microseconds start{0};      // all of Start()
  std::chrono::microseconds cont{0};       // Continue()
  std::chrono::microseconds shutdown{0};   // Shutdown()
};

// What a resumed guest gets for the time it was paused; see Vm::Resume.
enum class MissedTicks { kCatchUp, kDrop };

// Which step of the shutdown ladder ended QEMU. kPowerdown and kAgentPowerdown: the guest
// powered off when asked; kQuit, kTerminate, kKill: it did not, and QEMU was stopped.
enum class ShutdownStep { kAlreadyExited, kPowerdown, kAgentPowerdown, kQuit, kTerminate, kKill };
// Whether the guest powered off itself (when asked, or before anyone asked).
bool PoweredOff(ShutdownStep step);
std::string_view ToString(ShutdownStep step);

struct ShutdownResult {
  ExitStatus status;
  ShutdownStep step = ShutdownStep::kAlreadyExited;  // the step QEMU exited at
  // What the ladder did before the power button, or why it skipped it ("" when the guest
  // simply ran): a snapshot save in progress cancelled, a paused guest resumed so that it can
  // hear the button, a guest that had not started.
  std::string note;
};

class Vm {
 public:
  static constexpr std::chrono::milliseconds kDefaultPowerdownGrace{10000};

  static std::unique_ptr<Vm> Start(const VmSpec& spec, VmOptions options = {});
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  // Lets the paused guest run.
  void Continue();

  // Waits, the guest still paused, until a display client has connected to the VM's VNC or
  // SPICE display and passed its authentication (QEMU's VNC_INITIALIZED, SPICE_INITIALIZED):
  // for a guest that must be watched from its first frame (an installer's "press any key to
  // boot from CD"). Returns false when a stop request came first (left pending). Throws
  // UsageError for a VM without a VNC or SPICE display, VmError when QEMU exits meanwhile.
  bool WaitForViewer(StopRequests* stop = nullptr);

  // Pauses the guest (QMP stop).
  void Pause();
  // Resumes a paused guest (QMP cont). With kCatchUp (QEMU's own behaviour) a guest whose RTC
  // policy is slew is given the RTC interrupts it missed while paused, at up to 8x the rate,
  // so a clock that counts ticks catches up with host time (docs/timekeeping.md has the
  // measurement). kDrop first sends rtc-reset-reinjection: the paused time is lost to the
  // tick count. That suits callers who set the guest's clock themselves after a pause (through
  // a guest agent, as libvirt does), where a catch-up would count the pause twice.
  void Resume(MissedTicks missed = MissedTicks::kCatchUp);

  // Waits for a console line matching `pattern`; see ConsoleLog::WaitFor.
  ConsoleMatch WaitForConsole(const ConsolePattern& pattern, std::chrono::milliseconds timeout);
  ConsoleLog& console() { return *console_; }

  // Types `bytes` on the guest's serial console (its input; "\n" ends a line for a shell,
  // "\r" is what a terminal's Enter sends to a login prompt). Waits up to `timeout` for the
  // guest's UART to take them. VmError when QEMU has exited ("the VM has exited"), or when the
  // guest does not read its console for `timeout`. Any thread; writes do not interleave.
  void WriteConsole(std::string_view bytes,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Send this, wait for that: consumes the console output so far (ConsoleLog::ConsumeAll),
  // writes `text`, and waits for a line matching `expect` after it. The guest's echo of
  // `text` is console output too: anchor `expect` (^...$) to tell the answer from the echo.
  ConsoleMatch SendConsole(std::string_view text, const ConsolePattern& expect,
                           std::chrono::milliseconds timeout);

  QmpClient& qmp() { return *qmp_; }

  // The hardware decided for the guest OS (firmware, TPM, buses, network card, display).
  const HardwareProfile& hardware() const { return hardware_; }
  // Where a viewer connects, as QEMU reports it: "vnc 127.0.0.1:5900", "vnc unix:PATH",
  // "spice unix:PATH", "gtk"; empty without a display.
  const std::string& display() const { return display_; }
  // The password a VNC viewer needs on a TCP display (random, set before the guest runs);
  // empty for a Unix socket, which only this user can reach.
  const std::string& display_password() const { return display_password_; }
  // The TPM emulator's process (spec.tpm), or nullptr.
  const Process* swtpm() const { return swtpm_.get(); }

  // The guest agent's socket (in the runtime directory; empty without spec.agent).
  const std::string& agent_socket() const { return agent_socket_; }
  // A connection to the guest agent, synced: waits up to `timeout` for the guest to start it
  // (GuestAgentUnavailable after). QEMU serves one connection at a time, so while it lives no
  // other process (kvmrun exec) reaches the agent: keep it for a series of calls, not longer.
  std::unique_ptr<GuestAgent> ConnectAgent(
      std::chrono::milliseconds timeout = GuestAgent::kDefaultAgentWait);
  // Runs a command in the guest (ConnectAgent, then GuestAgent::Exec).
  GuestExecResult Exec(const GuestExecRequest& request,
                       std::chrono::milliseconds agent_timeout = GuestAgent::kDefaultAgentWait);

  // Saves the VM's state to `path` (snapshot.h); the VM is paused and stays paused (Continue
  // lets it run on). UsageError when a writable disk's writes go to a temporary overlay
  // (DiskSpec::snapshot, or this VM was itself restored): they would be lost, and the saved
  // memory would not match the disk it is restored with.
  SnapshotSaveResult SaveSnapshot(const std::string& path,
                                  std::chrono::milliseconds timeout = std::chrono::minutes(10));
  // Why SaveSnapshot would refuse, or "" when it would not.
  std::string SnapshotRefusal() const;
  // What a snapshot of this VM records, and a restore must match.
  const SnapshotIdentity& snapshot_identity() const { return identity_; }
  // The header of the snapshot this VM was restored from (spec.restore_from).
  const std::optional<SnapshotHeader>& restored_from() const { return restored_from_; }

  // Waits until QEMU exits, `timeout` passes, or `interrupt_fd` (if >= 0) becomes readable;
  // returns the exit status once QEMU exited.
  std::optional<ExitStatus> WaitForExit(std::chrono::milliseconds timeout, int interrupt_fd = -1);

  // The ladder: the guest gets `grace` to power off, asked twice: system_powerdown (the ACPI
  // power button, which a guest without acpid or logind ignores) and, after a second or so,
  // guest-shutdown through its agent when one answers (most cloud and minimal images run
  // qemu-ga); then quit, then SIGTERM, then SIGKILL, each with a short wait. A grace of 0
  // skips the guest's part. Idempotent. A request on `stop` during the ladder (a second
  // Ctrl-C) cuts it short: SIGKILL at once.
  ShutdownResult Shutdown(std::chrono::milliseconds grace = kDefaultPowerdownGrace,
                          StopRequests* stop = nullptr);

  // Sends `signal` to QEMU (and whatever else is in its process group): SIGSTOP and SIGCONT
  // stall the whole VM the way an overloaded host does. Nothing once QEMU has exited.
  void SignalQemu(int signal);

  std::optional<ExitStatus> exit_status() const { return exit_status_; }
  // Whether QEMU's last STOP or RESUME event, as read so far, was STOP (paused over QMP, by
  // anyone). Events are read whenever anyone talks to QEMU over kvmrun's connection.
  bool PausedByEvent() const;
  // Why QEMU shut down, from its SHUTDOWN event ("guest-shutdown", "host-qmp-quit", ...),
  // once it has exited; empty when unknown.
  std::string ShutdownReason();

  const VmSpec& spec() const { return spec_; }
  const std::vector<std::string>& argv() const { return argv_; }
  const std::string& qemu() const { return qemu_; }
  const QemuCapabilities& capabilities() const { return caps_; }
  const AccelDecision& accel() const { return accel_; }
  const KvmDiagnosis& kvm_diagnosis() const { return kvm_; }
  const ClockPolicy& policy() const { return policy_; }
  const ClockRendering& rendering() const { return rendering_; }
  // The verification report (absent with VerifyMode::kOff).
  const std::optional<ClockReport>& clock_report() const { return report_; }
  const VmTimings& timings() const { return timings_; }
  pid_t pid() const;
  const std::string& runtime_dir() const;

  std::string StderrTail() const;
  // Why the console log stopped being written (empty while all is well).
  std::string ConsoleLogError() const;

 private:
  struct Io;
  Vm();
  void StartIo();
  void StopIo();
  [[noreturn]] void FailStart(const std::string& what);
  void ReadHardwareBack(const std::string& display_socket);
  void Kill();
  void RemovePublicSocket();
  // guest-shutdown through the agent, within about two seconds; false when the guest refused.
  bool AskAgentToPowerOff();
  void WriteConsoleLog(std::string_view bytes);

  VmSpec spec_;
  VmOptions options_;
  std::string qemu_;
  QemuCapabilities caps_;
  KvmDiagnosis kvm_;
  AccelDecision accel_;
  ClockPolicy policy_;
  ClockRendering rendering_;
  std::vector<std::string> argv_;
  std::optional<ClockReport> report_;
  VmTimings timings_;
  SnapshotIdentity identity_;
  std::optional<SnapshotHeader> restored_from_;

  std::unique_ptr<class RuntimeDir> runtime_;
  std::unique_ptr<ConsoleLog> console_;
  std::unique_ptr<Io> io_;
  std::unique_ptr<Process> process_;
  std::unique_ptr<QmpClient> qmp_;
  std::optional<ExitStatus> exit_status_;
  // What the QMP event stream said, recorded by whichever thread read it (QmpClient's event
  // handler), so that no wait of ours can miss it: see ShutdownReason().
  struct Events;
  std::shared_ptr<Events> events_;
  std::string agent_socket_;
  HardwareProfile hardware_;
  std::unique_ptr<Process> swtpm_;
  std::string display_;
  std::string display_password_;
};

// The argv Start() would use, decided without starting a VM (for --dry-run). No guest is
// booted, the KVM probe guest included: a cached verdict is used, else KVM is taken as usable
// on the device checks. QEMU itself runs only to probe its capabilities when they are not
// cached. `notes` says what was run or assumed, a line each. The private sockets are fd=3 and
// fd=4, as in every real start. The command's public sockets are in options.runtime_base when
// given, else in DefaultNamedVmBase()/.commands, which is made (private, checked) so that the
// command runs as pasted.
struct VmPlan {
  std::vector<std::string> argv;
  std::vector<std::string> notes;
};
VmPlan PlanVm(const VmSpec& spec, VmOptions options = {});

}  // namespace kvmrun

#endif  // KVMRUN_VM_H_

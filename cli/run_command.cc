// kvmrun run: boot a VM under its clock policy, verify it, and own it until it exits.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <iostream>
#include <mutex>
#include <sstream>

#include "cli/commands.h"
#include "cli/console_server.h"
#include "cli/detach.h"
#include "cli/snapshot_run.h"
#include "cli/terminal.h"
#include "cli/vm_file.h"
#include "cli/vm_options.h"
#include "io/safe_file.h"
#include "kvmrun/error.h"
#include "kvmrun/guest_clock.h"
#include "kvmrun/policy_format.h"
#include "kvmrun/process.h"
#include "kvmrun/qmp_codec.h"
#include "kvmrun/vm.h"
#include "kvmrun/vm_registry.h"
#include "kvmrun/vm_run.h"
#include "policy/names.h"

namespace kvmrun::cli {
namespace {

using namespace std::chrono_literals;

// Writes all of `bytes`; returns 0 or the errno of the failure.
int WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

std::chrono::milliseconds Seconds(const po::variables_map& vm, const char* option) {
  return PositiveSeconds(vm[option].as<double>(), std::string("--") + option);
}

template <typename T>
std::vector<T> Many(const po::variables_map& vm, const char* option) {
  return vm.count(option) ? vm[option].as<std::vector<T>>() : std::vector<T>{};
}

// What only `run` has besides the shared VM options (vm_options.h).
void AddRunVmOptions(po::options_description& options) {
  // clang-format off
  options.add_options()
      ("readonly-disk",
       po::value<std::vector<std::string>>()->value_name("FILE[,format=F][,bus=B]"),
       "a read-only disk (repeatable; as --disk)")
      ("snapshot", "discard all writes to the disks")
      ("cdrom", po::value<std::vector<std::string>>()->value_name("FILE"),
       "an ISO image, read-only (repeatable: an installer, then a driver ISO such as\n"
       "virtio-win); on sata, or ide for the OSes that predate AHCI")
      ("boot", po::value<std::string>()->default_value("auto")->value_name("auto|disk|cdrom"),
       "what the firmware tries first. auto: the first --cdrom when every --disk is blank (a\n"
       "new disk to install on), else the disks; cdrom: the installer even on a used disk")
      ("net", "a user-mode network card (off by default)")
      ("net-model", po::value<std::string>()->value_name("virtio|e1000e|e1000|rtl8139"),
       "the network card (default: the OS's; e1000e for Windows, virtio for Linux)")
      ("forward", po::value<std::vector<std::string>>()->value_name("[tcp:|udp:][ADDR:]HP:GP"),
       "forward host port HP to guest port GP (repeatable; implies --net). ADDR is\n"
       "127.0.0.1 unless given: tcp:2222:22 lets 'ssh -p 2222 localhost' reach the guest")
      ("display", po::value<std::string>()->default_value("none")->value_name("MODE"),
       "none (the serial console only), vnc (127.0.0.1, first free port from 5900, a\n"
       "random password; both printed), vnc=unix (a socket in the VM's runtime directory,\n"
       "no password), vnc=ADDR:PORT (with a password; an ADDR other than loopback is\n"
       "announced), spice (a Unix socket), gtk")
      ("wait-for-viewer", "hold the guest paused until a viewer has connected to its vnc or\n"
       "spice display, so that its first frames are seen (an installer's \"press any\n"
       "key to boot from CD\"); 'kvmrun stop' ends the wait")
      ("state-dir", po::value<std::string>()->value_name("DIR"),
       "keep the UEFI variables and TPM state here (default with --name: \n"
       "$XDG_DATA_HOME/kvmrun/vms/NAME; without: thrown away with the VM)")
      ("no-reboot", "a guest reboot ends the VM")
      ("no-agent", "no virtio-serial port for the QEMU guest agent (kvmrun exec needs one)")
      ("name", po::value<std::string>()->value_name("NAME"),
       "name the VM: ps, exec, stop, verify and qmp find it by NAME (its sockets and logs\n"
       "live in $XDG_RUNTIME_DIR/kvmrun/NAME); one VM per name (without: an unnamed VM,\n"
       "'kvmrun' to QEMU)")
      ("detach", "with --name: return once the guest runs (clocks verified), leaving a\n"
                 "supervisor that owns the VM; 'kvmrun stop NAME' ends it")
      ("qmp-socket", po::value<std::string>()->value_name("PATH"),
       "also open a QMP monitor at PATH (mode 0600; PATH must not exist, or be a stale socket)")
      ("firmware-dir", po::value<std::vector<std::string>>()->value_name("DIR"),
       "QEMU -L firmware directory (repeatable; automatic for a QEMU outside /usr)")
      ("extra-arg", po::value<std::vector<std::string>>()->value_name("ARG"),
       "a raw QEMU argument, appended last (repeatable; -daemonize is refused)")
      ("verify", po::value<std::string>()->default_value("enforce")->value_name("off|warn|enforce"),
       "check the clocks before the guest runs, and the guest's own clock once its agent\n"
       "answers; enforce stops on a mismatch (exit 3)")
      ("resync", po::value<std::string>()->default_value("off")->value_name("auto|off"),
       "auto: set the guest's clock from the host's (guest agent) after each stall the VM\n"
       "had (paused, QEMU stopped or starved, host suspended); off: only report stalls");
  // clang-format on
  AddGuestClockOptions(options, 120);
}

// Where a named VM's console output goes besides the terminal or log: the client of its console
// server, once there is one (the output begins before the server can).
class ConsoleTap {
 public:
  void Serve(const std::string& path, Vm& vm) {
    auto server = std::make_unique<ConsoleServer>(
        path, [&vm](std::string_view bytes) { vm.WriteConsole(bytes, 1s); },
        [&vm] { return vm.console().Tail(5); });
    std::lock_guard lock(mu_);
    server_ = std::move(server);
  }
  void Forward(std::string_view bytes) {
    std::lock_guard lock(mu_);
    if (server_) server_->Forward(bytes);
  }
  void Stop() {
    std::unique_ptr<ConsoleServer> server;
    {
      std::lock_guard lock(mu_);
      server = std::move(server_);
    }
  }

 private:
  std::mutex mu_;
  std::unique_ptr<ConsoleServer> server_;
};

// "kvmrun: guest-time +0.012 s +- 0.10 ms: ok (within +-2.000 s)", one line per row.
void PrintGuestClockRows(const std::vector<ClockCheck>& rows) {
  std::ostringstream text;
  for (const ClockCheck& row : rows) {
    text << "kvmrun: " << row.timer << " " << row.observed << ": " << ToString(row.outcome)
         << " (expected " << row.expected << (row.detail.empty() ? "" : "; " + row.detail) << ")\n";
  }
  std::cerr << text.str() << std::flush;
}

// Where a person sees an empty console and does not know why.
std::vector<std::string> ConsoleHints(const VmSpec& spec, const VmOptions& options) {
  std::vector<std::string> hints;
  if (options.console_log.empty() && !options.on_console) return hints;  // nobody watches it
  const GuestFamily family = Describe(spec.os).family;
  if (!spec.kernel.empty() && spec.append.find("console=ttyS") == std::string::npos &&
      family != GuestFamily::kWindows) {
    hints.push_back(
        "--append has no console=ttyS0: the kernel will write nothing to the serial console "
        "(add console=ttyS0)");
  } else if (spec.kernel.empty() && family == GuestFamily::kWindows) {
    hints.push_back(
        "Windows writes nothing to a serial console: reach it through its agent (kvmrun exec) "
        "or its network; the console here stays empty");
  }
  return hints;
}

VmSpec SpecFrom(const po::variables_map& vm) {
  VmSpec spec;
  const bool snapshot = vm.count("snapshot") > 0;
  ApplyGuestOptions(vm, spec);
  ApplyHardwareOptions(vm, spec);
  ApplyPayloadOptions(vm, spec, snapshot);
  for (const std::string& arg : Many<std::string>(vm, "readonly-disk")) {
    spec.disks.push_back(ParseDiskArgument(arg, true, snapshot, "readonly_disk"));
  }
  spec.cdroms = Many<std::string>(vm, "cdrom");
  spec.boot_from = ParseName(vm["boot"].as<std::string>(), "--boot", kAllBootFroms);
  spec.network = vm.count("net") > 0;
  if (vm.count("net-model")) {
    spec.nic_model = ParseNicModel(vm["net-model"].as<std::string>(), "--net-model");
  }
  for (const std::string& arg : Many<std::string>(vm, "forward")) {
    spec.forwards.push_back(ParseForwardArgument(arg, "--forward"));
  }
  spec.display = ParseDisplayArgument(vm["display"].as<std::string>(), "--display");
  if (vm.count("wait-for-viewer") && spec.display.kind != DisplayKind::kVnc &&
      spec.display.kind != DisplayKind::kSpice) {
    throw UsageError("--wait-for-viewer: no viewer can connect to --display " +
                     vm["display"].as<std::string>() + "; valid with --display vnc[=...] or spice");
  }
  if (vm.count("state-dir")) spec.state_dir = vm["state-dir"].as<std::string>();
  spec.no_reboot = vm.count("no-reboot") > 0;
  spec.agent = vm.count("no-agent") == 0;
  if (vm.count("name")) spec.name = vm["name"].as<std::string>();  // else VmSpec's "kvmrun"
  if (vm.count("qmp-socket")) spec.qmp_socket = vm["qmp-socket"].as<std::string>();
  spec.firmware_dirs = Many<std::string>(vm, "firmware-dir");
  spec.extra_args = Many<std::string>(vm, "extra-arg");
  spec.verify = ParseVerifyMode(vm["verify"].as<std::string>());
  if (vm.count("restore")) spec.restore_from = vm["restore"].as<std::string>();
  if (spec.state_dir.empty() && vm.count("name")) {
    // A VM someone named is one they come back to: its UEFI variables and TPM are kept.
    const HardwareProfile hardware = ResolveHardware(spec);
    if (hardware.firmware != Firmware::kBios || hardware.tpm) {
      ValidateVmName(spec.name);
      spec.state_dir = DefaultStateDir(spec.name);
    }
  }
  return spec;
}

// What `kvmrun ps` and the other commands learn about a named VM.
nlohmann::json NamedVmInfo(const Vm& vm, const VmSpec& spec, bool detached,
                           const VmOptions& options) {
  return {{"supervisor_pid", getpid()},
          {"qemu_pid", vm.pid()},
          {"started_unix", std::time(nullptr)},
          {"detached", detached},
          {"accel", ToString(vm.accel().accel)},
          {"os", ToString(spec.os)},
          // The whole policy the VM was given, its overrides marked: verify NAME judges by it.
          {"policy", ClockPolicyToJson(vm.policy())},
          {"overrides", OverridesText(OverridesOf(vm.policy()))},
          {"qemu", vm.qemu()},
          {"qemu_version", ToString(vm.capabilities().version)},
          {"qmp_socket", spec.qmp_socket},
          {"agent_socket", vm.agent_socket()},
          {"display", vm.display()},
          {"display_password", vm.display_password()},
          {"state_dir", spec.state_dir},
          {"console_log", options.console_log},
          {"snapshot_identity", SnapshotIdentityToJson(vm.snapshot_identity())},
          {"snapshot_refusal", vm.SnapshotRefusal()}};
}

nlohmann::json TimingsJson(const VmTimings& t) {
  const auto ms = [](std::chrono::microseconds us) { return us.count() / 1000.0; };
  return {{"probe_ms", ms(t.probe)},      {"kvm_check_ms", ms(t.kvm_check)},
          {"spawn_ms", ms(t.spawn)},      {"qmp_ready_ms", ms(t.qmp_ready)},
          {"verify_ms", ms(t.verify)},    {"start_ms", ms(t.start)},
          {"cont_ms", ms(t.cont)},        {"shutdown_ms", ms(t.shutdown)},
          {"incoming_ms", ms(t.incoming)}};
}

po::options_description RunOptions() {
  po::options_description options("Options");
  AddGuestOptions(options);
  AddHardwareOptions(options);
  AddPayloadOptions(options, false);
  AddRunVmOptions(options);
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("console-log", po::value<std::string>()->value_name("FILE"),
       "write the serial console to FILE instead of stdout")
      ("timeout", po::value<double>()->value_name("S"),
       "stop the VM (shutdown ladder) after S seconds")
      ("grace", po::value<double>()->default_value(10)->value_name("S"),
       "seconds a guest gets to power off after SIGINT/SIGTERM, 'kvmrun stop' or --timeout:\n"
       "asked by the power button, then through its guest agent; 0 quits QEMU at once (a\n"
       "second SIGINT/SIGTERM kills QEMU at once)")
      ("console-input", po::value<std::string>()->default_value("auto")->implicit_value("on")
                            ->value_name("auto|on|off"),
       "what is typed goes to the guest's serial console. auto: when stdin is this\n"
       "process's terminal and the console is shown on it (raw mode: every key reaches the\n"
       "guest, Ctrl-C too; the terminal is restored on every way out); on: from a pipe or\n"
       "file too; off: never (stdin is left alone)")
      ("escape-key", po::value<std::string>()->default_value("^]")->value_name("KEY"),
       "on a terminal, the key that stops the VM as SIGINT does (a second press kills it):\n"
       "a control key in caret notation (^] is Ctrl-], as in virsh console), or none")
      ("verbose,v", "show the clock verification table (by default one summary line, the\n"
                    "table only on a mismatch)")
      ("quiet,q", "only errors, warnings and the console: no status, summary or hints")
      ("json", "print a JSON report on stdout at the end (the console then goes to stderr)")
      ("marker", po::value<std::string>()->value_name("REGEX"),
       "report (with --json) how long after 'cont' a console line first matched REGEX")
      ("restore", po::value<std::string>()->value_name("FILE"),
       "start from a snapshot instead of booting (kvmrun snapshot save, or --save): the\n"
       "other options must be the ones it was saved with; writable disks get a temporary\n"
       "overlay each; the guest's clock is set through the agent (unless --resync=off)")
      ("snapshot-at", po::value<std::string>()->value_name("REGEX"),
       "boot, wait for a console line matching REGEX, save the VM to --save FILE, quit")
      ("save", po::value<std::string>()->value_name("FILE"), "the snapshot file of --snapshot-at")
      ("dry-run", "print a QEMU command line to paste into a shell and exit: not paused, the\n"
                  "console on its terminal, QMP at a socket stderr names; no VM and no probe\n"
                  "guest is started (QEMU runs only to probe its capabilities when they are not\n"
                  "cached; stderr says what was run or assumed). --accel kvm plans for a KVM\n"
                  "host even where KVM does not work");
  // clang-format on
  AddVmFileOptions(options);
  return options;
}

}  // namespace

namespace {

// Says how the run ended (JSON or a line) and returns run's exit code; throws for a QEMU that
// failed, as a failed start does.
int ReportRunEnd(Vm& vm, const VmSpec& spec, const RunOutcome& out, bool json, bool quiet,
                 const std::vector<std::string>& notices, bool console_failed) {
  std::string stopped_by = out.stopped_by;
  if (!stopped_by.empty()) stopped_by += " (stopped by " + std::string(ToString(out.step)) + ")";
  // A stop the guest answered by powering off, or one it ignored.
  const bool powered_off_when_asked = PoweredOff(out.step);
  const std::string log_error = vm.ConsoleLogError();

  if (json) {
    nlohmann::json report = {
        {"ok", out.ok() && log_error.empty()},
        {"exit_status", out.status.ToString()},
        {"shutdown_reason", out.shutdown_reason},
        {"stopped_by", stopped_by},
        {"shutdown_note", out.shutdown_note},
        {"console_log_error", log_error},
        {"qemu", vm.qemu()},
        {"qemu_version", ToString(vm.capabilities().version)},
        {"accel", ToString(vm.accel().accel)},
        {"cpu_model", vm.accel().cpu_model},
        {"os", ToString(spec.os)},
        {"argv", vm.argv()},
        {"notices", notices},
        {"timings", TimingsJson(vm.timings())},
    };
    report["timings"]["marker_ms"] =
        out.marker_after ? nlohmann::json(out.marker_after->count()) : nlohmann::json();
    report["timings"]["run_ms"] = out.ran.count();
    if (vm.clock_report()) {
      report["clock_report"] = ClockReportToJson(*vm.clock_report());
    }
    if (vm.restored_from()) {
      report["restored_from"] = SnapshotHeaderToJson(*vm.restored_from());
      report["restored_from"]["file"] = spec.restore_from;
    }
    if (!out.guest_clock.empty()) {
      report["guest_clock"] = ClockReportToJson(ClockReport{out.guest_clock});
    }
    report["stalls"] = nlohmann::json::array();
    for (const VmStall& stall : out.stalls) {
      report["stalls"].push_back(
          {{"kind", ToString(stall.kind)}, {"seconds", stall.length.count() / 1000.0}});
    }
    std::cout << DumpJson(report, 2) << std::endl;
  } else if (!stopped_by.empty()) {
    std::cerr << "kvmrun: VM stopped: " << out.stopped_by << ": "
              << (powered_off_when_asked ? "the guest powered off when asked"
                                         : "the guest did not power off, QEMU was stopped")
              << " (stopped by " << ToString(out.step) << ")"
              << (out.shutdown_note.empty() ? "" : "; " + out.shutdown_note) << "\n";
  } else if (out.ok() && !quiet) {
    std::cerr << "kvmrun: guest powered off"
              << (out.shutdown_reason.empty() ? "" : " (" + out.shutdown_reason + ")") << "\n";
  }
  if (out.stopped_by == kGuestClockMismatch) return kExitMismatch;
  if (out.stopped_by == "timeout") return kExitTimeout;
  if (console_failed) return kExitFailure;
  if (!stopped_by.empty()) return powered_off_when_asked ? kExitStoppedCleanly : kExitStoppedForced;
  if (!out.status.Success()) {
    throw VmError("QEMU " + out.status.ToString() +
                      (out.shutdown_reason.empty() ? "" : " (" + out.shutdown_reason + ")"),
                  vm.argv(), vm.StderrTail(), vm.console().Tail());
  }
  if (!log_error.empty()) throw Error(log_error);
  return kExitOk;
}

// What a named VM's supervisor leaves behind when the run ends: how, and its log's end.
void KeepLastRun(const VmRegistration& registration, const std::string& name, const RunOutcome& out,
                 int code) {
  const NamedVm self = FindNamedVm(name).value_or(NamedVm{});
  LastRun run;
  run.name = name;
  run.supervisor_pid = getpid();
  run.started_unix = self.started;
  run.ended_unix = std::time(nullptr);
  run.stopped_by = out.stopped_by;
  run.step = ToString(out.step);
  run.forced = !out.stopped_by.empty() && !PoweredOff(out.step);
  run.shutdown_reason = out.shutdown_reason;
  run.qemu_exit = out.status.ToString();
  run.exit_code = code;
  run.summary = out.stopped_by.empty()
                    ? "the guest powered off by itself" +
                          (out.shutdown_reason.empty() ? "" : " (" + out.shutdown_reason + ")")
                    : std::string("stopped by ") + out.stopped_by + ": " +
                          (run.forced ? "the guest did not power off; QEMU was stopped by " +
                                            std::string(ToString(out.step))
                                      : "the guest powered off when asked (" +
                                            std::string(ToString(out.step)) + ")");
  if (!out.shutdown_note.empty()) run.summary += "; " + out.shutdown_note;
  std::string log;
  try {
    log = ReadRegularFile(registration.Path("kvmrun.log"), 64u << 20, FinalLink::kRefuse);
  } catch (const Error&) {
    // Not detached: its messages went to its terminal.
  }
  try {
    RecordLastRun(run, log);
  } catch (const Error& e) {
    StderrLine(std::string("kvmrun: how the run ended was not kept: ") + e.what());
  }
}

int RunWith(const po::variables_map& vm, const VmCommandLine& command_line,
            const po::options_description& options) {
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun run [VM-FILE] [--os OS] [--kernel K [--initrd I] [--append A]] [--disk D]...\n"
        "           [options]",
        "Boots a VM with the clock policy of its OS. QEMU starts paused; kvmrun reads the\n"
        "clocks back over QMP and compares them with the policy, and only then lets the guest\n"
        "run. KVM is used when usable, else TCG (said on stderr). The serial console goes to\n"
        "stdout; on a terminal, what is typed goes to the guest (raw mode, as virsh console:\n"
        "Ctrl-C is the guest's, Ctrl-] stops the VM). SIGINT/SIGTERM power the guest off (then\n"
        "quit, SIGTERM, SIGKILL), in any phase, start-up included; a second one kills QEMU.\n"
        "Exit: 0 the guest powered off, 1 QEMU or guest failure (or the console could not be\n"
        "written), 2 bad usage, 3 clock mismatch, 4 stopped (a signal, Ctrl-], kvmrun stop)\n"
        "and the guest powered off when asked, 5 stopped but the guest did not power off\n"
        "(QEMU quit or killed), 6 stopped by --timeout.\n\n"
        "Examples:\n"
        "  kvmrun run --os linux --kernel vmlinuz --initrd initrd.img --append console=ttyS0\n"
        "  kvmrun run --os windows-11 --name win11 --disk win11.qcow2 --cdrom Win11.iso \\\n"
        "             --cdrom virtio-win.iso --display vnc --net   (UEFI Secure Boot, TPM:\n"
        "             docs/hardware.md; 'kvmrun policy --os windows-11 --explain' says why)\n"
        "  kvmrun run --os linux --disk debian.qcow2 --firmware uefi --forward tcp:2222:22\n"
        "  kvmrun run --os linux --kernel K --dry-run\n"
        "  kvmrun run --os linux --kernel K --snapshot-at login: --save booted.kvmrun\n"
        "  kvmrun run --os linux --kernel K --restore booted.kvmrun   (docs/snapshots.md)\n"
        "  kvmrun run examples/vm/linux-ci.toml --memory 1G   (a VM file; docs/vm-files.md)",
        options);
    return kExitOk;
  }
  VmSpec spec = SpecFrom(vm);
  const bool json = vm.count("json") > 0;
  const bool wait_for_viewer = vm.count("wait-for-viewer") > 0;
  RejectConflicts(vm, {"verbose", "quiet"});
  const bool verbose = vm.count("verbose") > 0;
  const bool quiet = vm.count("quiet") > 0 || json;
  const std::string resync_mode = vm["resync"].as<std::string>();
  if (resync_mode != "auto" && resync_mode != "off") {
    throw UsageError("--resync: invalid value '" + resync_mode + "'; valid: auto, off");
  }
  const bool resync = resync_mode == "auto";
  RunLimits limits;
  if (spec.agent && spec.verify != VerifyMode::kOff) {
    GuestClockGate gate;
    gate.wait = AgentWaitOption(vm);
    gate.max_offset = MaxOffsetOption(vm);
    gate.stop_on_mismatch = spec.verify == VerifyMode::kEnforce;
    gate.on_result = [quiet = vm.count("quiet") > 0](const std::vector<ClockCheck>& rows) {
      std::vector<ClockCheck> shown;
      for (const ClockCheck& row : rows) {
        if (!quiet || row.outcome == CheckOutcome::kMismatch) shown.push_back(row);
      }
      PrintGuestClockRows(shown);
    };
    limits.guest_clock = gate;
  } else {
    MaxOffsetOption(vm);  // still checked
    AgentWaitOption(vm);
  }
  if (resync && !spec.agent) {
    throw UsageError("--resync=auto needs the guest agent port; it cannot go with --no-agent");
  }
  limits.grace = NonNegativeSeconds(vm["grace"].as<double>(), "--grace");
  if (vm.count("timeout")) limits.timeout = Seconds(vm, "timeout");
  std::optional<ConsolePattern> snapshot_at;
  if (vm.count("snapshot-at") != vm.count("save")) {
    throw UsageError(
        "--snapshot-at REGEX and --save FILE go together: the line to save at, "
        "and where");
  }
  const std::string input_mode = vm["console-input"].as<std::string>();
  if (input_mode != "auto" && input_mode != "on" && input_mode != "off") {
    throw UsageError("--console-input: invalid value '" + input_mode + "'; valid: auto, on, off");
  }
  const std::optional<char> escape_key = ParseEscapeKey(vm["escape-key"].as<std::string>());
  if (input_mode == "on" && vm.count("detach")) {
    throw UsageError(
        "--console-input cannot go with --detach: 'kvmrun console NAME' attaches to the "
        "detached VM's console");
  }
  const bool terminal = IsForegroundTerminal(STDIN_FILENO);
  const bool console_input =
      input_mode == "on" || (input_mode == "auto" && terminal && !vm.count("detach") &&
                             !vm.count("console-log") && !vm.count("snapshot-at"));
  if (vm.count("snapshot-at")) {
    try {
      snapshot_at = ConsolePattern(vm["snapshot-at"].as<std::string>());
    } catch (const UsageError& e) {
      throw UsageError("--snapshot-at: " + std::string(e.what()));
    }
    if (vm.count("detach")) throw UsageError("--snapshot-at cannot go with --detach");
  }
  if (vm.count("marker")) {
    try {
      limits.marker = ConsolePattern(vm["marker"].as<std::string>());
    } catch (const UsageError& e) {
      throw UsageError("marker", e.what());
    }
  }
  // Every option is checked by now: a bad value fails --dump-config as it would fail a run.
  if (DumpConfigIfAsked(command_line, options, std::cout)) return kExitOk;

  VmOptions vm_options;
  std::vector<std::string> notices;
  vm_options.on_notice = [&](std::string_view notice) {
    notices.emplace_back(notice);
    std::cerr << "kvmrun: " << notice << std::endl;
  };
  if (vm.count("dry-run")) {
    vm_options.on_notice = nullptr;  // the plan's notes say it all, once
    // A VM file is trusted like code (its `qemu` key names a program kvmrun runs), but a dry
    // run runs nothing of it: what it needs to know of that QEMU comes from the probe cache.
    const auto& entries = command_line.file.entries;
    if (std::any_of(entries.begin(), entries.end(),
                    [](const VmFileEntry& e) { return e.key == "qemu"; })) {
      vm_options.runner = MakeRefusingRunner(
          "--dry-run does not run the QEMU a VM file names; 'kvmrun doctor --qemu PATH' probes it "
          "once (cached), or give --qemu on the command line");
    }
    const VmPlan plan = PlanVm(spec, vm_options);
    std::cout << ShellJoin(plan.argv) << "\n";
    for (const std::string& note : plan.notes) std::cerr << "kvmrun: --dry-run: " << note << "\n";
    std::cerr << "kvmrun: --dry-run: no VM was started\n";
    return kExitOk;
  }
  // A name given makes the VM findable (vm_registry.h): its directory holds the sockets.
  const bool named = vm.count("name") > 0;
  const bool detach = vm.count("detach") > 0;
  if (detach && !named) {
    throw UsageError(
        "--detach needs --name NAME: the name is how 'kvmrun exec' and 'kvmrun "
        "stop' find the VM");
  }
  if (detach && json) throw UsageError("--detach and --json cannot be used together");
  std::optional<VmRegistration> registration;
  if (named) {
    registration = VmRegistration::Claim(DefaultNamedVmBase(), spec.name);
    vm_options.runtime_dir = registration->dir();
    if (spec.qmp_socket.empty()) spec.qmp_socket = registration->Path("qmp.sock");
    if (detach && !vm.count("console-log")) {
      vm_options.console_log = registration->Path("console.log");
    }
  }
  std::optional<Detachment> detachment;
  if (detach) {
    // No thread runs yet: the fork is safe. The child carries on below as the supervisor.
    detachment = Detachment::Fork(registration->Path("kvmrun.log"));
    if (!detachment->is_child()) {
      registration->Release();  // the child holds the name now
      return detachment->parent_exit_code();
    }
  }
  // From here on SIGINT, SIGTERM and SIGHUP are requests the library acts on wherever it
  // waits, start-up included. Made before any thread, so every thread has them blocked.
  const auto stop = StopRequests::ForSignals({SIGINT, SIGTERM, SIGHUP});
  vm_options.stop = stop;
  limits.stop = stop.get();
  std::atomic<int> console_error{0};
  if (vm.count("console-log")) {
    vm_options.console_log = vm["console-log"].as<std::string>();
  } else if (!detach) {
    // Nobody reads the console any more (`kvmrun run | head -1`): stop the VM properly.
    const int console_fd = json ? STDERR_FILENO : STDOUT_FILENO;
    vm_options.on_console = [console_fd, &console_error, &stop](std::string_view bytes) {
      if (console_error != 0) return;
      const int err = WriteAll(console_fd, bytes);
      if (err == 0) return;
      console_error = err;
      stop->Request(std::string("the console output failed (") + std::strerror(err) + ")");
    };
  }
  // A named VM's console is also served on console.sock (kvmrun console NAME), once it runs.
  ConsoleTap tap;
  if (named) {
    vm_options.on_console = [terminal_writer = std::move(vm_options.on_console),
                             &tap](std::string_view bytes) {
      if (terminal_writer) terminal_writer(bytes);
      tap.Forward(bytes);
    };
  }
  vm_options.on_qemu_stderr = [](std::string_view line) {
    StderrLine("qemu: " + std::string(line));
  };
  // On a raw terminal Ctrl-C is the guest's: the escape key is how the user stops.
  const std::string again = console_input && terminal && escape_key
                                ? EscapeKeyName(*escape_key) + " again"
                                : "a second Ctrl-C";
  limits.on_stopping = [again, grace = limits.grace](std::string_view why) {
    StderrLine("kvmrun: " + std::string(why) + ": asking the guest to power off (up to " +
               SecondsText(grace) + "), then quitting QEMU; " + again + " forces it");
  };

  std::unique_ptr<Vm> machine;
  // The console server types on `machine`: it stops before the VM goes, however we leave.
  const std::unique_ptr<ConsoleTap, void (*)(ConsoleTap*)> stop_tap(
      &tap, [](ConsoleTap* t) { t->Stop(); });
  try {
    machine = Vm::Start(spec, vm_options);
    if (!quiet) {
      std::cerr << "kvmrun: QEMU " << ToString(machine->capabilities().version) << " ("
                << machine->qemu() << "), " << ToString(machine->accel().accel) << ", -cpu "
                << machine->accel().cpu_model << ", os " << ToString(spec.os) << "\n";
      const HardwareProfile& hw = machine->hardware();
      if (!spec.cdroms.empty()) {
        std::cerr << "kvmrun: boots from the " << ToString(hw.boot_from) << " first ("
                  << hw.boot_reason << ")\n";
      }
      if (hw.firmware != Firmware::kBios || hw.tpm) {
        std::cerr << "kvmrun: firmware " << ToString(hw.firmware)
                  << (hw.tpm ? ", TPM 2.0 (swtpm)" : "") << ", kept in "
                  << (spec.state_dir.empty() ? "the runtime directory (thrown away)"
                                             : spec.state_dir)
                  << "\n";
      }
      if (!machine->display().empty()) {
        std::cerr << "kvmrun: display: " << machine->display()
                  << (machine->display_password().empty()
                          ? ""
                          : ", password " + machine->display_password())
                  << "\n";
      }
      for (const std::string& hint : ConsoleHints(spec, vm_options)) {
        std::cerr << "kvmrun: hint: " << hint << "\n";
      }
    }
    if (const auto& report = machine->clock_report(); report && !json) {
      // The table when asked for or when it matters; else one line.
      if (verbose || !report->ok()) {
        std::cerr << FormatClockReport(*report);
      } else if (!quiet) {
        std::cerr << "kvmrun: " << SummarizeClockReport(*report) << " (--verbose: the table)\n";
      }
    }
    if (!wait_for_viewer) machine->Continue();
  } catch (...) {
    if (!detachment) throw;
    std::ostringstream message;  // for the parent, which is still waiting to hear
    const int code = ReportCurrentException("kvmrun run: ", message);
    detachment->Failed(code, message.str());
    return code;
  }
  if (registration) {
    nlohmann::json info = NamedVmInfo(*machine, spec, detach, vm_options);
    info["console_socket"] = "";
    if (console_input) {
      info["console_busy"] = "its console takes input from the terminal it runs on";
    } else {
      // One writer at a time: with the terminal taking input, nobody else may type.
      tap.Serve(registration->Path("console.sock"), *machine);
      info["console_socket"] = registration->Path("console.sock");
    }
    registration->Publish(info);
  }
  if (detachment) {
    // The parent's terminal is the only one the user sees: what they need to reach the VM.
    std::string started = "kvmrun: VM '" + spec.name + "' runs (" +
                          std::string(ToString(machine->accel().accel)) + ", QEMU " +
                          ToString(machine->capabilities().version) + ", supervisor pid " +
                          std::to_string(getpid()) + ")\n";
    if (!machine->display().empty()) {
      started +=
          "  display: " + machine->display() +
          (machine->display_password().empty() ? ""
                                               : "   password: " + machine->display_password()) +
          "\n";
    }
    if (wait_for_viewer) started += "  the guest is paused until a viewer connects\n";
    started += "  kvmrun console " + spec.name + "   kvmrun exec " + spec.name +
               " -- CMD...   kvmrun stop " + spec.name +
               "\n  console log: " + vm_options.console_log + "\n";
    detachment->Started(started);
  }
  if (wait_for_viewer) {
    StderrLine("kvmrun: the guest is paused until a viewer connects to " + machine->display());
    if (machine->WaitForViewer(stop.get())) {
      StderrLine("kvmrun: a viewer connected; the guest runs");
      machine->Continue();
    }  // else the run loop below sees the stop request, and the ladder quits the unstarted VM
  }
  if (snapshot_at) {
    return SaveAtConsolePattern(*machine, *snapshot_at, vm["save"].as<std::string>(),
                                limits.timeout.value_or(std::chrono::minutes(10)), *stop, json);
  }
  if (machine->restored_from() && (resync || vm["resync"].defaulted())) {
    StderrLine(ResyncAfterRestore(*machine, AgentWaitOption(vm), stop.get()));
  }
  const std::string sync_hint =
      named ? "'kvmrun sync " + spec.name + "' or --resync=auto sets it" : "--resync=auto sets it";
  limits.on_stall = [&machine, resync, sync_hint](const VmStall& stall) {
    std::string line = "kvmrun: the guest did not run for " + SecondsText(stall.length) + " (" +
                       std::string(ToString(stall.kind)) + ")";
    if (!resync) {
      line += "; its clock may be behind (" + sync_hint + ")";
    } else {
      try {
        line +=
            "; guest clock resynced: " + FormatResync(ResyncGuestClock(*machine->ConnectAgent(5s)));
      } catch (const Error& e) {
        line += std::string("; guest clock not resynced: ") + e.what();
      }
    }
    StderrLine(line);
  };
  std::optional<RawTerminal> raw;
  std::optional<ConsoleInput> input;
  if (console_input) {
    const bool escapable = terminal && escape_key;
    if (!quiet) {
      std::cerr << "kvmrun: the console takes input"
                << (escapable ? "; " + EscapeKeyName(*escape_key) + " stops the VM" : "")
                << std::endl;
    }
    if (terminal) raw.emplace(STDIN_FILENO);
    input.emplace(
        STDIN_FILENO, terminal ? escape_key : std::nullopt,
        [&machine](std::string_view bytes) {
          try {
            machine->WriteConsole(bytes, 1s);
          } catch (const VmError&) {
            // A guest that reads no input for a second (paused, busy) loses those keys, as a
            // serial line would; once QEMU has exited, the copying ends.
            if (machine->console().closed()) throw;
          }
        },
        [&stop, escape_key] {
          stop->Request("the escape key (" + EscapeKeyName(*escape_key) + ")");
        });
  }
  const RunOutcome out = RunUntilExit(*machine, limits);
  input.reset();
  raw.reset();
  int code = kExitFailure;
  try {
    code = ReportRunEnd(*machine, spec, out, json, quiet, notices, console_error != 0);
  } catch (...) {
    if (!registration) throw;
    std::ostringstream message;
    code = ReportCurrentException("kvmrun run: ", message);
    std::cerr << message.str() << std::flush;
  }
  // A named VM's end is kept after its directory goes: 'kvmrun stop' and 'ps --all' read it.
  if (registration) KeepLastRun(*registration, spec.name, out, code);
  return code;
}

}  // namespace

VmSpec ParseRunArgs(const Args& args) {
  const po::options_description options = RunOptions();
  const VmCommandLine command_line = ParseVmCommandLine(args, options, "run");
  return FromVmCommandLine(command_line, SpecFrom);
}

int RunCommand(const Args& args) {
  const po::options_description options = RunOptions();
  const VmCommandLine command_line = ParseVmCommandLine(args, options, "run");
  return FromVmCommandLine(command_line, [&](const po::variables_map& vm) {
    return RunWith(vm, command_line, options);
  });
}

}  // namespace kvmrun::cli

// kvmrun run: boot a VM under its clock policy, verify it, and own it until it exits.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <iostream>
#include <regex>
#include <thread>

#include "cli/commands.h"
#include "kvmrun/error.h"
#include "kvmrun/policy_format.h"
#include "kvmrun/vm.h"

namespace kvmrun::cli {
namespace {

using namespace std::chrono_literals;

void WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::chrono::milliseconds Seconds(const po::variables_map& vm, const char* option) {
  return PositiveSeconds(vm[option].as<double>(), std::string("--") + option);
}

template <typename T>
std::vector<T> Many(const po::variables_map& vm, const char* option) {
  return vm.count(option) ? vm[option].as<std::vector<T>>() : std::vector<T>{};
}

void AddVmOptions(po::options_description& options) {
  // clang-format off
  options.add_options()
      ("os", po::value<std::string>()->value_name("OS"),
       "guest OS: picks the clock policy (kvmrun policy --list)")
      ("qemu", po::value<std::string>()->value_name("PATH"),
       "qemu-system-x86_64 to run (default: $KVMRUN_QEMU, then PATH)")
      ("accel", po::value<std::string>()->default_value("auto")->value_name("auto|kvm|tcg"),
       "auto: KVM when usable, else TCG with a notice")
      ("machine", po::value<std::string>()->value_name("TYPE"), "machine type (default: QEMU's)")
      ("cpu", po::value<std::string>()->value_name("MODEL"),
       "CPU model (default: host under KVM, max under TCG)")
      ("memory,m", po::value<std::string>()->default_value("512M")->value_name("SIZE"),
       "guest memory: 512 (MiB), 512M, 2G")
      ("cpus", po::value<int>()->default_value(1)->value_name("N"), "virtual CPUs")
      ("kernel", po::value<std::string>()->value_name("FILE"), "boot this kernel directly")
      ("initrd", po::value<std::string>()->value_name("FILE"), "initramfs for --kernel")
      ("append", po::value<std::string>()->value_name("ARGS"), "kernel command line")
      ("disk", po::value<std::vector<std::string>>()->value_name("FILE"),
       "a virtio disk, raw or qcow2 (repeatable)")
      ("readonly-disk", po::value<std::vector<std::string>>()->value_name("FILE"),
       "a read-only virtio disk (repeatable)")
      ("snapshot", "discard all writes to the disks")
      ("cdrom", po::value<std::string>()->value_name("FILE"), "an ISO image")
      ("net", "a user-mode network card (off by default)")
      ("no-reboot", "a guest reboot ends the VM")
      ("name", po::value<std::string>()->default_value("kvmrun")->value_name("NAME"), "VM name")
      ("qmp-socket", po::value<std::string>()->value_name("PATH"),
       "also open a QMP monitor at PATH (mode 0600)")
      ("firmware-dir", po::value<std::vector<std::string>>()->value_name("DIR"),
       "QEMU -L firmware directory (repeatable; automatic for a QEMU outside /usr)")
      ("extra-arg", po::value<std::vector<std::string>>()->value_name("ARG"),
       "a raw QEMU argument, appended last (repeatable)")
      ("verify", po::value<std::string>()->default_value("enforce")->value_name("off|warn|enforce"),
       "check the clocks before the guest runs; enforce stops on a mismatch (exit 3)");
  // clang-format on
  AddOverrideOptions(options);
}

VmSpec SpecFrom(const po::variables_map& vm) {
  if (!vm.count("os")) throw UsageError("--os is required; see 'kvmrun policy --list'");
  VmSpec spec;
  spec.os = ParseGuestOs(vm["os"].as<std::string>());
  spec.clock_overrides = GetOverrides(vm);
  if (vm.count("qemu")) spec.qemu = vm["qemu"].as<std::string>();
  spec.accel = ParseAccelRequest(vm["accel"].as<std::string>());
  if (vm.count("machine")) spec.machine = vm["machine"].as<std::string>();
  if (vm.count("cpu")) spec.cpu_model = vm["cpu"].as<std::string>();
  spec.memory_mib = ParseMemorySize(vm["memory"].as<std::string>());
  spec.cpus = vm["cpus"].as<int>();
  if (vm.count("kernel")) spec.kernel = vm["kernel"].as<std::string>();
  if (vm.count("initrd")) spec.initrd = vm["initrd"].as<std::string>();
  if (vm.count("append")) spec.append = vm["append"].as<std::string>();
  const bool snapshot = vm.count("snapshot") > 0;
  for (const std::string& path : Many<std::string>(vm, "disk")) {
    spec.disks.push_back({path, DetectDiskFormat(path), false, snapshot});
  }
  for (const std::string& path : Many<std::string>(vm, "readonly-disk")) {
    spec.disks.push_back({path, DetectDiskFormat(path), true, snapshot});
  }
  if (vm.count("cdrom")) spec.cdrom = vm["cdrom"].as<std::string>();
  spec.network = vm.count("net") > 0;
  spec.no_reboot = vm.count("no-reboot") > 0;
  spec.name = vm["name"].as<std::string>();
  if (vm.count("qmp-socket")) spec.qmp_socket = vm["qmp-socket"].as<std::string>();
  spec.firmware_dirs = Many<std::string>(vm, "firmware-dir");
  spec.extra_args = Many<std::string>(vm, "extra-arg");
  spec.verify = ParseVerifyMode(vm["verify"].as<std::string>());
  return spec;
}

nlohmann::json TimingsJson(const VmTimings& t) {
  const auto ms = [](std::chrono::microseconds us) { return us.count() / 1000.0; };
  return {{"probe_ms", ms(t.probe)},   {"kvm_check_ms", ms(t.kvm_check)},
          {"spawn_ms", ms(t.spawn)},   {"qmp_ready_ms", ms(t.qmp_ready)},
          {"verify_ms", ms(t.verify)}, {"start_ms", ms(t.start)},
          {"cont_ms", ms(t.cont)},     {"shutdown_ms", ms(t.shutdown)}};
}

// SIGINT, SIGTERM and SIGHUP arrive on a descriptor instead of interrupting: the main loop
// turns them into a graceful shutdown. Blocked before any thread starts so all inherit it.
int SignalFd() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return signalfd(-1, &set, SFD_CLOEXEC);
}

po::options_description RunOptions() {
  po::options_description options("Options");
  AddVmOptions(options);
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("console-log", po::value<std::string>()->value_name("FILE"),
       "write the serial console to FILE instead of stdout")
      ("timeout", po::value<double>()->value_name("S"),
       "stop the VM (shutdown ladder) after S seconds")
      ("grace", po::value<double>()->default_value(10)->value_name("S"),
       "seconds a guest gets to power off after SIGINT/SIGTERM or --timeout")
      ("json", "print a JSON report on stdout at the end (the console then goes to stderr)")
      ("marker", po::value<std::string>()->value_name("REGEX"),
       "report (with --json) how long after 'cont' a console line first matched REGEX")
      ("dry-run", "print the QEMU command line and exit");
  // clang-format on
  return options;
}

}  // namespace

VmSpec ParseRunArgs(const Args& args) { return SpecFrom(Parse(args, RunOptions())); }

int RunCommand(const Args& args) {
  const po::options_description options = RunOptions();
  const po::variables_map vm = Parse(args, options);
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun run --os OS [--kernel K [--initrd I] [--append A]] [--disk D]... [options]",
        "Boots a VM with the clock policy of its OS. QEMU starts paused; kvmrun reads the\n"
        "clocks back over QMP and compares them with the policy, and only then lets the guest\n"
        "run. KVM is used when usable, else TCG (said on stderr). The serial console goes to\n"
        "stdout; SIGINT/SIGTERM power the guest off (then quit, SIGTERM, SIGKILL).\n"
        "Exit: 0 guest powered off, 1 QEMU or guest failure, 2 bad usage, 3 clock mismatch.\n\n"
        "Examples:\n"
        "  kvmrun run --os linux --kernel vmlinuz --initrd initrd.img --append console=ttyS0\n"
        "  kvmrun run --os windows-11 --disk win11.qcow2 --memory 4G --cpus 2 --net\n"
        "  kvmrun run --os linux --kernel K --dry-run",
        options);
    return kExitOk;
  }
  const VmSpec spec = SpecFrom(vm);
  const bool json = vm.count("json") > 0;
  const std::chrono::milliseconds grace = Seconds(vm, "grace");
  std::optional<std::chrono::milliseconds> timeout;
  if (vm.count("timeout")) timeout = Seconds(vm, "timeout");
  std::optional<std::regex> marker;
  if (vm.count("marker")) {
    try {
      marker = std::regex(vm["marker"].as<std::string>());
    } catch (const std::regex_error& e) {
      throw UsageError("--marker: invalid regular expression '" + vm["marker"].as<std::string>() +
                       "': " + e.what());
    }
  }

  VmOptions vm_options;
  std::vector<std::string> notices;
  vm_options.on_notice = [&](std::string_view notice) {
    notices.emplace_back(notice);
    std::cerr << "kvmrun: " << notice << std::endl;
  };
  if (vm.count("dry-run")) {
    std::cout << ShellJoin(PlanVmArgv(spec, vm_options)) << "\n";
    std::cerr << "kvmrun: fd 3 and 4 stand for kvmrun's QMP and console sockets, which QEMU "
                 "inherits when kvmrun runs it\n";
    return kExitOk;
  }
  if (vm.count("console-log")) {
    vm_options.console_log = vm["console-log"].as<std::string>();
  } else {
    const int console_fd = json ? STDERR_FILENO : STDOUT_FILENO;
    vm_options.on_console = [console_fd](std::string_view bytes) { WriteAll(console_fd, bytes); };
  }
  vm_options.on_qemu_stderr = [](std::string_view line) {
    std::cerr << "qemu: " << line << std::endl;
  };
  const int signals = SignalFd();

  std::unique_ptr<Vm> machine = Vm::Start(spec, vm_options);
  if (!json) {
    std::cerr << "kvmrun: QEMU " << ToString(machine->capabilities().version) << " ("
              << machine->qemu() << "), " << ToString(machine->accel().accel) << ", -cpu "
              << machine->accel().cpu_model << ", os " << ToString(spec.os) << "\n";
    if (machine->clock_report()) std::cerr << FormatClockReport(*machine->clock_report());
  }
  machine->Continue();
  const auto continued = std::chrono::steady_clock::now();
  std::optional<double> marker_ms;
  std::thread marker_watch;
  if (marker) {
    marker_watch = std::thread([&] {
      if (machine->console().WaitFor(*marker, std::chrono::hours(24 * 365)).outcome ==
          ConsoleMatch::Outcome::kMatched) {
        marker_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - continued)
                .count();
      }
    });
  }

  std::optional<ExitStatus> status;
  std::string stopped_by;
  const auto deadline =
      std::chrono::steady_clock::now() + timeout.value_or(std::chrono::hours(24 * 3650));
  while (!status) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    status = machine->WaitForExit(std::max(left, 0ms), signals);
    if (status) break;
    signalfd_siginfo info{};
    if (read(signals, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      stopped_by = std::string("SIG") + sigabbrev_np(static_cast<int>(info.ssi_signo));
    } else if (std::chrono::steady_clock::now() >= deadline) {
      stopped_by = "--timeout";
    } else {
      continue;
    }
    std::cerr << "kvmrun: " << stopped_by << ": shutting the VM down" << std::endl;
    const ShutdownResult result = machine->Shutdown(grace);
    status = result.status;
    stopped_by += " (stopped by " + std::string(ToString(result.step)) + ")";
  }

  if (marker_watch.joinable()) marker_watch.join();  // the console closed when QEMU exited
  const std::string reason = machine->ShutdownReason();
  const bool ok = stopped_by.empty() && status->Success();
  if (json) {
    nlohmann::json report = {
        {"ok", ok},
        {"exit_status", status->ToString()},
        {"shutdown_reason", reason},
        {"stopped_by", stopped_by},
        {"qemu", machine->qemu()},
        {"qemu_version", ToString(machine->capabilities().version)},
        {"accel", ToString(machine->accel().accel)},
        {"cpu_model", machine->accel().cpu_model},
        {"os", ToString(spec.os)},
        {"argv", machine->argv()},
        {"notices", notices},
        {"timings", TimingsJson(machine->timings())},
    };
    report["timings"]["marker_ms"] = marker_ms ? nlohmann::json(*marker_ms) : nlohmann::json();
    report["timings"]["run_ms"] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - continued)
            .count();
    if (machine->clock_report())
      report["clock_report"] = ClockReportToJson(*machine->clock_report());
    std::cout << report.dump(2) << std::endl;
  } else if (!stopped_by.empty()) {
    std::cerr << "kvmrun: VM stopped: " << stopped_by << "\n";
  } else if (ok) {
    std::cerr << "kvmrun: guest powered off" << (reason.empty() ? "" : " (" + reason + ")") << "\n";
  }
  if (!stopped_by.empty()) return kExitFailure;
  if (!status->Success()) {
    throw VmError("QEMU " + status->ToString() + (reason.empty() ? "" : " (" + reason + ")"),
                  machine->argv(), machine->StderrTail(), machine->console().Tail());
  }
  return kExitOk;
}

}  // namespace kvmrun::cli

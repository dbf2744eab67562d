// kvmrun timecheck: how many timer ticks a policy loses when the VM stalls, measured in a guest.
#include <filesystem>
#include <iostream>
#include <tuple>

#include "cli/commands.h"
#include "cli/vm_file.h"
#include "cli/vm_options.h"
#include "kvmrun/error.h"
#include "kvmrun/probe_guest.h"
#include "kvmrun/qmp_codec.h"
#include "kvmrun/timecheck.h"

namespace kvmrun::cli {
namespace {

namespace fs = std::filesystem;

// The probe-guest builder next to this kvmrun: libexec/kvmrun beside it in a build tree,
// <prefix>/libexec/kvmrun for <prefix>/bin/kvmrun. Empty: the library's install default.
std::string ToolsNextToThisBinary() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  for (const fs::path& dir :
       {exe.parent_path() / "libexec/kvmrun", exe.parent_path().parent_path() / "libexec/kvmrun"}) {
    if (fs::exists(dir / "make-test-guest", ec)) return dir.string();
  }
  return "";
}

po::options_description TimecheckOptionsDescription() {
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("mode", po::value<std::string>()->default_value("ticks")->value_name("ticks|wall"),
       "ticks: count the RTC interrupts the probe guest gets; wall: read the guest's own\n"
       "wall clock through its agent around each stall (any guest with qemu-guest-agent)")
      ("stall", po::value<std::string>()->default_value("sigstop")->value_name("KIND"),
       "sigstop (QEMU stopped by a signal), qmp (QMP stop/cont), starve (host CPU busy), none")
      ("stalls", po::value<int>()->default_value(3)->value_name("N"), "how many stalls")
      ("stall-seconds", po::value<double>()->default_value(3)->value_name("S"), "each stall's length")
      ("duration", po::value<int>()->default_value(30)->value_name("S"),
       "seconds of guest time to measure")
      ("rate", po::value<int>()->default_value(1024)->value_name("HZ"),
       "RTC periodic interrupt rate, a power of two from 2 to 8192")
      ("compare", po::value<std::string>()->value_name("default|OS"),
       "also measure this policy in the same invocation: default (QEMU's defaults) or an OS")
      ("drop-owed-ticks", "with --stall qmp: resume with rtc-reset-reinjection (see docs)")
      ("json", "print the measurements as JSON")
      ("kernel", po::value<std::string>()->value_name("FILE"),
       "probe guest kernel (default: $KVMRUN_GUEST_DIR, else the one kvmrun builds once in\n"
       "~/.cache/kvmrun/probe-guest)")
      ("initrd", po::value<std::string>()->value_name("FILE"),
       "probe guest initramfs, with /bin/kvmrun-probe (default: as --kernel)")
      ("append", po::value<std::string>()->value_name("ARGS"),
       "--mode wall: the guest's kernel command line (default for the probe guest:\n"
       "console=ttyS0 quiet kvmrun.hold)")
      ("disk", po::value<std::string>()->value_name("FILE[,format=F][,bus=B]"),
       "--mode wall: boot this disk instead of a kernel (a guest with qemu-guest-agent;\n"
       "writes are discarded)");
  // clang-format on
  AddGuestOptions(options);
  AddVmFileOptions(options);
  return options;
}

int TimecheckWith(const po::variables_map& vm, const VmCommandLine& command_line,
                  const po::options_description& options) {
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun timecheck [VM-FILE] [--os OS] [overrides] [--stall sigstop|qmp|starve|none] "
        "[--stalls N]\n"
        "                        [--stall-seconds S] [--duration S] [--compare default|OS] "
        "[--json]",
        "Boots a probe guest that counts RTC interrupts, stalls the VM the way busy hosts do,\n"
        "at the same guest times in every run, and reports per policy: ticks counted against\n"
        "host wall time and against the guest's own clock, the worst one-second deficit, the\n"
        "catch-up time after each stall and the drift. --compare runs a second policy in the\n"
        "same invocation (default: QEMU's own defaults) and prints the two side by side.\n"
        "The HPET is off in every run (with it on, Linux routes IRQ 8 away from the RTC).\n"
        "--mode wall reads the guest's wall clock instead (its offset from the host's before\n"
        "and after each stall, and how long it takes to catch up), in any guest that runs\n"
        "qemu-guest-agent: the probe guest, or --disk / --kernel with --append.\n"
        "Exit: 0 measured, 1 the VM or the probe in it failed, 2 bad usage.\n\n"
        "Examples:\n"
        "  kvmrun timecheck --os linux-legacy --stall sigstop --compare default\n"
        "  kvmrun timecheck --mode wall --os linux --stall qmp --compare default\n"
        "  kvmrun timecheck --mode wall --os linux --disk debian.qcow2 --stall qmp\n"
        "  kvmrun timecheck --os windows-11 --stall qmp --json",
        options);
    return kExitOk;
  }
  const std::string mode = vm["mode"].as<std::string>();
  if (mode != "ticks" && mode != "wall") {
    throw UsageError("--mode: invalid value '" + mode + "'; valid: ticks, wall");
  }
  const bool wall = mode == "wall";
  if (!wall && (vm.count("append") || vm.count("disk"))) {
    throw UsageError("--append and --disk are for --mode wall (the tick probe boots its own)");
  }
  TimecheckOptions o;
  ApplyGuestOptions(vm, o.base);
  const GuestOs os = o.base.os;
  const ClockOverrides overrides = o.base.clock_overrides;
  o.stall = ParseStallKind(vm["stall"].as<std::string>());
  o.stalls = vm["stalls"].as<int>();
  o.stall_seconds = vm["stall-seconds"].as<double>();
  o.duration_s = vm["duration"].as<int>();
  o.rate_hz = vm["rate"].as<int>();
  o.drop_owed_ticks = vm.count("drop-owed-ticks") > 0;
  ValidateTimecheckOptions(o);
  if (DumpConfigIfAsked(command_line, options, std::cout)) return kExitOk;
  const auto progress = [](std::string_view line) {
    std::cerr << "kvmrun timecheck: " << line << std::endl;
  };
  if (vm.count("kernel") != vm.count("initrd")) {
    throw UsageError("--kernel and --initrd go together (or neither: the probe guest)");
  }
  if (vm.count("disk")) {
    if (vm.count("kernel")) throw UsageError("--disk and --kernel cannot be used together");
    o.base.disks.push_back(ParseDiskArgument(vm["disk"].as<std::string>(), false, true, "disk"));
  } else if (vm.count("kernel")) {
    o.base.kernel = vm["kernel"].as<std::string>();
    o.base.initrd = vm["initrd"].as<std::string>();
  } else {
    ProbeGuestOptions guest;
    guest.tools_dir = ToolsNextToThisBinary();
    guest.on_progress = progress;
    const ProbeGuest found = FindOrBuildProbeGuest(guest);
    o.base.kernel = found.kernel;
    o.base.initrd = found.initrd;
  }
  o.base.memory_mib = vm.count("disk") ? 1024 : 256;
  if (wall) {
    o.base.append = vm.count("append")      ? vm["append"].as<std::string>()
                    : o.base.kernel.empty() ? ""
                                            : "console=ttyS0 quiet kvmrun.hold";
  }
  ValidateVmSpec(o.base);
  const bool json = vm.count("json") > 0;
  o.vm.on_notice = [](std::string_view notice) { std::cerr << "kvmrun: " << notice << std::endl; };
  o.on_progress = [&](const std::string& line) { progress(line); };

  // The policies to run: the one asked for, and the --compare one.
  std::vector<std::tuple<std::string, GuestOs, ClockOverrides>> policies = {
      {std::string(ToString(os)), os, overrides}};
  if (vm.count("compare")) {
    const std::string other = vm["compare"].as<std::string>();
    const GuestOs compare_os = other == "default" ? GuestOs::kOther : ParseGuestOs(other);
    policies.emplace_back(other == "default" ? other : std::string(ToString(compare_os)),
                          compare_os, ClockOverrides{});
  }
  if (wall) {
    std::vector<WallClockRun> runs;
    for (const auto& [label, policy_os, policy_overrides] : policies) {
      runs.push_back(RunWallClockCheck(label, policy_os, policy_overrides, o));
    }
    if (json) {
      std::cout << DumpJson(WallClockToJson(runs, o), 2) << std::endl;
    } else {
      std::cout << FormatWallClockTable(runs, o);
    }
    return kExitOk;
  }
  std::vector<TimecheckRun> runs;
  for (const auto& [label, policy_os, policy_overrides] : policies) {
    runs.push_back(RunTimecheck(label, policy_os, policy_overrides, o));
  }
  if (json) {
    std::cout << DumpJson(TimecheckToJson(runs, o), 2) << std::endl;
  } else {
    std::cout << FormatTimecheckTable(runs, o);
  }
  return kExitOk;
}

}  // namespace

int TimecheckCommand(const Args& args) {
  const po::options_description options = TimecheckOptionsDescription();
  const VmCommandLine command_line = ParseVmCommandLine(args, options, "timecheck");
  return FromVmCommandLine(command_line, [&](const po::variables_map& vm) {
    return TimecheckWith(vm, command_line, options);
  });
}

}  // namespace kvmrun::cli

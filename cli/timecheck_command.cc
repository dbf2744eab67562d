// kvmrun timecheck: how many timer ticks a policy loses when the VM stalls, measured in a guest.
#include <iostream>

#include "cli/commands.h"
#include "kvmrun/error.h"
#include "kvmrun/timecheck.h"

namespace kvmrun::cli {
namespace {

// The probe guest scripts/make-test-guest builds (with --probe) into the build tree.
constexpr char kDefaultGuestDir[] = KVMRUN_DEFAULT_GUEST_DIR;

std::string GuestFile(const po::variables_map& vm, const char* option, const char* name) {
  if (vm.count(option)) return vm[option].as<std::string>();
  return std::string(kDefaultGuestDir) + "/" + name;
}

}  // namespace

int TimecheckCommand(const Args& args) {
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("os", po::value<std::string>()->value_name("OS"), "the policy to measure (its OS)")
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
      ("kernel", po::value<std::string>()->value_name("FILE"), "probe guest kernel (default: the test guest)")
      ("initrd", po::value<std::string>()->value_name("FILE"), "probe guest initramfs, with /bin/kvmrun-probe")
      ("qemu", po::value<std::string>()->value_name("PATH"), "qemu-system-x86_64 to run")
      ("accel", po::value<std::string>()->default_value("auto")->value_name("auto|kvm|tcg"), "accelerator");
  // clang-format on
  AddOverrideOptions(options);
  const po::variables_map vm = Parse(args, options);
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun timecheck --os OS [overrides] [--stall sigstop|qmp|starve|none] [--stalls N]\n"
        "                        [--stall-seconds S] [--duration S] [--compare default|OS] "
        "[--json]",
        "Boots a probe guest that counts RTC interrupts, stalls the VM the way busy hosts do,\n"
        "at the same guest times in every run, and reports per policy: ticks counted against\n"
        "host wall time and against the guest's own clock, the worst one-second deficit, the\n"
        "catch-up time after each stall and the drift. --compare runs a second policy in the\n"
        "same invocation (default: QEMU's own defaults) and prints the two side by side.\n"
        "The HPET is off in every run (with it on, Linux routes IRQ 8 away from the RTC).\n\n"
        "Examples:\n"
        "  kvmrun timecheck --os linux-legacy --stall sigstop --compare default\n"
        "  kvmrun timecheck --os windows-11 --stall qmp --json",
        options);
    return kExitOk;
  }
  if (!vm.count("os")) throw UsageError("--os is required; see 'kvmrun policy --list'");
  const GuestOs os = ParseGuestOs(vm["os"].as<std::string>());
  const ClockOverrides overrides = GetOverrides(vm);

  TimecheckOptions o;
  o.stall = ParseStallKind(vm["stall"].as<std::string>());
  o.stalls = vm["stalls"].as<int>();
  o.stall_seconds = vm["stall-seconds"].as<double>();
  o.duration_s = vm["duration"].as<int>();
  o.rate_hz = vm["rate"].as<int>();
  o.drop_owed_ticks = vm.count("drop-owed-ticks") > 0;
  if (o.stalls < 0 || o.stalls > 100) {
    throw UsageError("--stalls: invalid value '" + std::to_string(o.stalls) + "'; valid: 0 to 100");
  }
  if (!(o.stall_seconds > 0) || o.stall_seconds > 600) {
    throw UsageError("--stall-seconds: invalid value '" + std::to_string(o.stall_seconds) +
                     "'; valid: more than 0, at most 600");
  }
  if (o.duration_s < 5 || o.duration_s > 86400) {
    throw UsageError("--duration: invalid value '" + std::to_string(o.duration_s) +
                     "'; valid: 5 to 86400 seconds");
  }
  if (o.rate_hz < 2 || o.rate_hz > 8192 || (o.rate_hz & (o.rate_hz - 1)) != 0) {
    throw UsageError("--rate: invalid value '" + std::to_string(o.rate_hz) +
                     "'; valid: a power of two from 2 to 8192");
  }
  if (o.drop_owed_ticks && o.stall != StallKind::kQmp) {
    throw UsageError("--drop-owed-ticks needs --stall qmp");
  }
  o.base.kernel = GuestFile(vm, "kernel", "vmlinuz");
  o.base.initrd = GuestFile(vm, "initrd", "initramfs.cpio.gz");
  if (vm.count("qemu")) o.base.qemu = vm["qemu"].as<std::string>();
  o.base.accel = ParseAccelRequest(vm["accel"].as<std::string>());
  o.base.memory_mib = 256;
  try {
    ValidateVmSpec(o.base);
  } catch (const UsageError& e) {
    throw UsageError(
        std::string(e.what()) +
        " (build the probe guest with scripts/make-test-guest, or give --kernel/--initrd)");
  }
  const bool json = vm.count("json") > 0;
  o.vm.on_notice = [](std::string_view notice) { std::cerr << "kvmrun: " << notice << std::endl; };
  o.on_progress = [](const std::string& line) {
    std::cerr << "kvmrun timecheck: " << line << std::endl;
  };

  std::vector<TimecheckRun> runs;
  runs.push_back(RunTimecheck(std::string(ToString(os)), os, overrides, o));
  if (vm.count("compare")) {
    const std::string other = vm["compare"].as<std::string>();
    if (other == "default") {
      runs.push_back(RunTimecheck("default", GuestOs::kOther, {}, o));
    } else {
      const GuestOs compare_os = ParseGuestOs(other);
      runs.push_back(RunTimecheck(std::string(ToString(compare_os)), compare_os, {}, o));
    }
  }
  if (json) {
    std::cout << TimecheckToJson(runs, o).dump(2) << std::endl;
  } else {
    std::cout << FormatTimecheckTable(runs, o);
  }
  return kExitOk;
}

}  // namespace kvmrun::cli

// kvmrun verify: check the clocks of any running QEMU against a guest OS's policy.
#include <iostream>

#include "cli/commands.h"
#include "kvmrun/clock_verify.h"
#include "kvmrun/error.h"
#include "kvmrun/qemu_probe.h"

namespace kvmrun::cli {

int VerifyCommand(const Args& args) {
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("wait", po::value<double>()->default_value(0)->value_name("S"),
       "keep trying for S seconds while the socket is missing or refuses connections")
      ("qmp-socket", po::value<std::string>()->value_name("PATH|NAME"),
       "the VM's QMP socket, or the name of a VM kvmrun runs")
      ("os", po::value<std::string>()->value_name("OS"), "the guest OS whose policy to check")
      ("json", "print the report as JSON");
  // clang-format on
  AddOverrideOptions(options);
  const po::variables_map vm = Parse(args, options);
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun verify --qmp-socket PATH --os OS [overrides] [--json]",
        "Reads the timer state of a running QEMU over QMP (accelerator, RTC base and lost-tick\n"
        "policy, PIT device and policy, HPET, per-vCPU hv-time and kvmclock) and compares it\n"
        "with the clock policy for OS, as rendered for that QEMU and accelerator. Works on any\n"
        "QEMU, also one started by libvirt or by hand. The RTC base is judged in this\n"
        "process's time zone (TZ), which must be QEMU's.\n"
        "Exit: 0 all ok, 3 mismatch, 1 cannot connect or read, 2 bad usage.",
        options);
    return kExitOk;
  }
  if (!vm.count("qmp-socket")) throw UsageError("--qmp-socket PATH is required");
  if (!vm.count("os")) throw UsageError("--os is required; see 'kvmrun policy --list'");
  const ClockPolicy policy =
      MakeClockPolicy(ParseGuestOs(vm["os"].as<std::string>()), GetOverrides(vm));

  QmpClient qmp(ConnectQmpSocket(QmpSocketOf(vm["qmp-socket"].as<std::string>()), WaitOption(vm)));
  const QemuCapabilities caps = CapabilitiesFromQmp(qmp);
  const HostClock host = SystemHostClock();
  const ClockReadback readback = ReadClockState(qmp, host);
  if (!readback.kvm_enabled.value) {
    throw Error("cannot tell the accelerator (query-kvm: " + readback.kvm_enabled.error + ")");
  }
  const Accel accel = *readback.kvm_enabled.value ? Accel::kKvm : Accel::kTcg;
  const ClockReport report = CompareClock(policy, RenderClock(policy, caps, accel), readback, host);
  if (vm.count("json")) {
    std::cout << ClockReportToJson(report).dump(2) << std::endl;
  } else {
    std::cout << "QEMU " << ToString(caps.version) << ", " << ToString(accel) << ", policy "
              << ToString(policy.os) << "\n"
              << FormatClockReport(report);
  }
  return report.ok() ? kExitOk : kExitMismatch;
}

}  // namespace kvmrun::cli

// kvmrun verify: check the clocks of any running QEMU against a guest OS's policy.
#include <iostream>

#include "cli/commands.h"
#include "kvmrun/clock_verify.h"
#include "kvmrun/error.h"
#include "kvmrun/guest_clock.h"
#include "kvmrun/guest_os.h"
#include "kvmrun/kvm_diagnosis.h"
#include "kvmrun/policy_format.h"
#include "kvmrun/qemu_probe.h"
#include "kvmrun/qmp_codec.h"

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
      ("os", po::value<std::string>()->value_name("OS"),
       "the guest OS whose policy to check (default for a NAME: the OS it was started with)")
      ("agent-socket", po::value<std::string>()->value_name("PATH"),
       "the guest agent's socket, for a VM not started by kvmrun (a NAME brings its own)")
      ("no-guest-time", "leave out the guest-clock rows (no agent is asked)")
      ("json", "print the report as JSON");
  // clang-format on
  AddGuestClockOptions(options, 3);
  AddOverrideOptions(options);
  po::positional_options_description positional;
  positional.add("qmp-socket", 1);  // kvmrun verify NAME
  const po::variables_map vm = Parse(args, options, &positional);
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun verify NAME | --qmp-socket PATH --os OS [overrides] [--json]",
        "Reads the timer state of a running QEMU over QMP (accelerator, RTC base and lost-tick\n"
        "policy, PIT device and policy, the HPET device, per-vCPU hv-time, Hyper-V set and\n"
        "kvmclock) and compares it with the clock policy for OS, as rendered for that QEMU,\n"
        "accelerator and host (what they cannot express shows as n/a, with why). Works on any\n"
        "QEMU, also one started by libvirt or by hand. The RTC base is judged in this\n"
        "process's time zone (TZ), which must be QEMU's.\n"
        "When the guest agent answers (a NAME's, or --agent-socket), two rows look inside:\n"
        "the guest's wall-clock offset from the host's (+- half the round trip) and, for\n"
        "Linux guests, its clocksource. No agent: the rows say so and nothing fails.\n"
        "Exit: 0 all ok, 3 mismatch, 1 cannot connect or read, 2 bad usage.\n\n"
        "Examples:\n"
        "  kvmrun verify web1                       a VM started with kvmrun run --name web1\n"
        "  kvmrun verify --qmp-socket /run/vm.qmp --os windows-11 --agent-socket /run/vm.qga",
        options);
    return kExitOk;
  }
  if (!vm.count("qmp-socket")) throw UsageError("a NAME or --qmp-socket PATH is required");
  const VmTarget target = TargetOf(vm["qmp-socket"].as<std::string>());
  const std::string os = vm.count("os") ? vm["os"].as<std::string>() : target.os;
  if (os.empty()) {
    const std::string& given = target.qmp_socket;
    throw UsageError(given.find('/') == std::string::npos
                         ? "no running VM is called '" + given +
                               "' ('kvmrun ps' lists them); for a socket path, --os is required"
                         : "--os is required; see 'kvmrun policy --list'");
  }
  // A named VM is judged by the policy it was given: its OS and its overrides, as recorded when
  // it started (or restored); overrides given here win over those.
  const GuestOs guest = ParseGuestOs(os);
  ClockOverrides overrides = GetOverrides(vm);
  if (target.policy && target.policy->os == guest) {
    overrides = MergeOverrides(OverridesOf(*target.policy), overrides);
  }
  const ClockPolicy policy = MakeClockPolicy(guest, overrides);
  const auto max_offset = MaxOffsetOption(vm);
  const auto agent_wait = AgentWaitOption(vm);
  const bool guest_time = vm.count("no-guest-time") == 0;
  const std::string agent_socket =
      vm.count("agent-socket") ? vm["agent-socket"].as<std::string>() : target.agent_socket;

  QmpClient qmp(ConnectQmpSocket(target.qmp_socket, WaitOption(vm)));
  const QemuCapabilities caps = CapabilitiesFromQmp(qmp);
  const HostClock host = SystemHostClock();
  const ClockReadback readback = ReadClockState(qmp, host);
  if (!readback.kvm_enabled.value) {
    throw Error("cannot tell the accelerator (query-kvm: " + readback.kvm_enabled.error + ")");
  }
  const Accel accel = *readback.kvm_enabled.value ? Accel::kKvm : Accel::kTcg;
  // Under KVM, what kvmrun would have written on this host: less what its KVM cannot give.
  HypervGaps gaps;
  if (accel == Accel::kKvm) {
    if (auto kvm = MakeKvmHost(); kvm->OpenError() == 0) gaps = HostHypervGaps(*kvm);
  }
  ClockReport report = CompareClock(policy, RenderClock(policy, caps, accel, gaps), readback, host);
  GuestClockReading reading;
  if (guest_time) {
    const bool linux_guest = Describe(policy.os).family == GuestFamily::kLinux;
    if (!agent_socket.empty()) {
      reading = ReadGuestClockAt(agent_socket, linux_guest, agent_wait);
    } else {
      reading = NoAgentReading(target.name.empty()
                                   ? "no agent socket given (--agent-socket PATH)"
                                   : "VM '" + target.name + "' has no agent port (--no-agent)");
    }
    for (ClockCheck& row : CompareGuestClock(policy, accel, reading, max_offset)) {
      report.checks.push_back(std::move(row));
    }
  }
  if (vm.count("json")) {
    nlohmann::json json = ClockReportToJson(report);
    json["policy"] = ClockPolicyToJson(policy);
    if (reading.offset.value) json["guest_offset"] = GuestOffsetToJson(*reading.offset.value);
    std::cout << DumpJson(json, 2) << std::endl;
  } else {
    const std::string overridden = OverridesText(OverridesOf(policy));
    std::cout << "QEMU " << ToString(caps.version) << ", " << ToString(accel) << ", policy "
              << ToString(policy.os) << (overridden.empty() ? "" : " with overrides " + overridden)
              << (target.policy ? " (as VM '" + target.name + "' was started)" : "") << "\n"
              << FormatClockReport(report);
  }
  return report.ok() ? kExitOk : kExitMismatch;
}

}  // namespace kvmrun::cli

// kvmrun doctor: what QEMU is here, what it can do, and whether KVM works.
#include <iostream>

#include "cli/commands.h"
#include "kvmrun/firmware.h"
#include "kvmrun/host_timekeeping.h"
#include "kvmrun/kvm_diagnosis.h"
#include "kvmrun/qemu_probe.h"
#include "kvmrun/qmp_codec.h"
#include "launcher/qemu_install.h"
#include "launcher/runtime_dir.h"
#include "policy/text_table.h"

namespace kvmrun::cli {

int DoctorCommand(const Args& args) {
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("qemu", po::value<std::string>()->value_name("PATH"),
       "qemu-system-x86_64 to examine (default: $KVMRUN_QEMU, then PATH)")
      ("json", "print the findings as JSON");
  // clang-format on
  const po::variables_map vm = Parse(args, options);
  if (vm.count("help")) {
    std::cout << HelpText("kvmrun doctor [--qemu PATH] [--json]",
                          "Finds QEMU, probes what it can do (cached per binary), and diagnoses "
                          "KVM:\n/dev/kvm, permissions, modules, nested virtualization, and a "
                          "probe guest booted\nunder KVM. Says which accelerator 'kvmrun run' "
                          "would pick, and why, and the host facts\nguest timekeeping depends "
                          "on (clocksource, TSC flags, KVM's master clock, ptp_kvm).\n"
                          "Exit: 0 done (whatever it found), 2 no QEMU or bad usage.\n\n"
                          "Examples:\n"
                          "  kvmrun doctor\n"
                          "  kvmrun doctor --qemu /opt/qemu/bin/qemu-system-x86_64 --json",
                          options);
    return kExitOk;
  }
  const std::string qemu = FindQemu(vm.count("qemu") ? vm["qemu"].as<std::string>() : "");
  auto runner = MakeProcessRunner();
  const ProbeCache cache;
  const ProbeResult probe = ProbeQemuCached(qemu, *runner, cache);
  auto host = MakeKvmHost();
  RuntimeDir work = RuntimeDir::Create();
  const KvmDiagnosis kvm = DiagnoseKvmForQemu(qemu, *host, *runner, cache, work.path());
  const AccelDecision accel = ChooseAccel(AccelRequest::kAuto, kvm);
  const HostTimekeeping timekeeping = ReadHostTimekeeping();
  // What --firmware and --tpm would use here (docs/hardware.md).
  std::vector<std::pair<std::string, std::string>> desktop;
  for (const auto& [firmware, machine] :
       {std::pair{Firmware::kUefi, "pc"}, std::pair{Firmware::kUefiSecure, "q35"}}) {
    try {
      const FirmwareImage image = FindFirmware(firmware, machine);
      desktop.emplace_back(ToString(firmware), image.code + " (" + image.descriptor + ")");
    } catch (const UsageError& e) {
      desktop.emplace_back(ToString(firmware), e.what());
    }
  }
  const std::string swtpm = FindExecutable("swtpm");
  desktop.emplace_back(
      "tpm", swtpm.empty() ? "swtpm is not installed (apt-get install swtpm)" : "swtpm " + swtpm);

  if (vm.count("json")) {
    nlohmann::json out = {
        {"kvmrun", {{"version", VersionNumber()}, {"build", VersionText()}}},
        {"qemu", qemu},
        {"capabilities", CapabilitiesToJson(probe.caps)},
        {"probe", {{"cached", probe.from_cache}, {"ms", probe.elapsed.count() / 1000.0}}},
        {"cache_file", cache.PathFor(qemu)},
        {"kvm", KvmDiagnosisToJson(kvm)},
        {"auto_accel", ToString(accel.accel)},
        {"auto_cpu_model", accel.cpu_model},
        {"host_timekeeping", HostTimekeepingToJson(timekeeping)},
        {"desktop",
         nlohmann::json(std::map<std::string, std::string>(desktop.begin(), desktop.end()))},
    };
    std::cout << DumpJson(out, 2) << std::endl;
    return kExitOk;
  }
  const auto yes = [](bool b) { return std::string(b ? "yes" : "no"); };
  const QemuCapabilities& c = probe.caps;
  std::cout << "kvmrun      " << VersionWithCommit() << "\n"
            << "QEMU        " << qemu << " (version " << ToString(c.version) << ")\n"
            << "probe       " << (probe.from_cache ? "cached" : "fresh") << ", "
            << probe.elapsed.count() / 1000.0 << " ms (" << cache.PathFor(qemu) << ")\n\n";
  std::string hyperv;
  for (const std::string& property : c.hv_properties) {
    if (!hyperv.empty()) hyperv += ' ';
    hyperv.append(property, 3);  // without "hv-"
  }
  std::cout << FormatTable({
      {"CAPABILITY", "PRESENT"},
      {"-global kvm-pit.lost_tick_policy", yes(c.kvm_pit_lost_tick_policy)},
      {"-no-kvm-pit-reinjection", yes(c.no_kvm_pit_reinjection_flag)},
      {"hpet device", yes(c.hpet_device)},
      {"-machine hpet=", yes(c.machine_hpet_property)},
      {"-no-hpet", yes(c.no_hpet_flag)},
      {"-rtc driftfix=", yes(c.rtc_driftfix)},
      {"cpu hv-*", hyperv.empty() ? "none" : hyperv},
      {"cpu kvmclock", yes(c.kvmclock)},
      {"default machine", c.default_machine},
      {"machine types", std::to_string(c.machine_types.size())},
  });
  std::cout << "\nKVM:\n";
  for (const std::string& check : kvm.checks) std::cout << "  " << check << "\n";
  std::cout << "\n" << (kvm.usable ? "usable: " : "not usable: ") << kvm.summary << "\n";
  if (!kvm.advice.empty()) std::cout << "advice: " << kvm.advice << "\n";
  if (kvm.functional_check_cached) std::cout << "(probe guest result cached for this boot)\n";
  std::cout << "kvmrun run --accel auto would use: " << ToString(accel.accel) << ", -cpu "
            << accel.cpu_model << "\n";
  std::cout << "\nFirmware and TPM (--firmware, --tpm):\n";
  for (const auto& [what, where] : desktop) std::cout << "  " << what << ": " << where << "\n";
  std::cout << "\nHost timekeeping (what guests' clocks depend on):\n";
  for (const HostTimekeepingFact& fact : timekeeping.facts) {
    std::cout << "  " << (fact.good ? "ok    " : "note  ") << fact.name << ": " << fact.value
              << "\n        " << fact.meaning << "\n        (" << fact.source << ")\n";
  }
  return kExitOk;
}

}  // namespace kvmrun::cli

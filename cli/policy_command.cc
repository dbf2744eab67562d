// kvmrun policy: the clock policy for a guest OS, rendered for a QEMU and an accelerator.
#include <iostream>

#include "cli/commands.h"
#include "kvmrun/clock_rendering.h"
#include "kvmrun/error.h"
#include "kvmrun/guest_os.h"
#include "kvmrun/kvm_diagnosis.h"
#include "kvmrun/policy_format.h"
#include "kvmrun/qemu_probe.h"
#include "kvmrun/qmp_codec.h"
#include "policy/names.h"
#include "policy/text_table.h"

namespace kvmrun::cli {
namespace {

enum class Format { kArgv, kShell, kJson, kLibvirtXml };
constexpr std::array kAllFormats{Format::kArgv, Format::kShell, Format::kJson, Format::kLibvirtXml};

std::string_view ToString(Format format) {
  switch (format) {
    case Format::kArgv:
      return "argv";
    case Format::kShell:
      return "shell";
    case Format::kJson:
      return "json";
    case Format::kLibvirtXml:
      return "libvirt-xml";
  }
  return "?";
}

constexpr char kDefaultQemuVersion[] = "7.2";

Format ParseFormat(const std::string& text) { return ParseName(text, "--format", kAllFormats); }

void PrintCatalog() {
  std::vector<TextRow> rows = {
      {"OS", "RTC", "PIT", "HPET", "KVMCLOCK", "HV-TIME", "HYPERV", "DESCRIPTION"}};
  for (const GuestOsInfo& info : GuestOsCatalog()) {
    const ClockPolicy p = MakeClockPolicy(info.os);
    std::string aliases;
    for (std::string_view alias : info.aliases) {
      aliases += (aliases.empty() ? "" : ", ") + std::string(alias);
    }
    rows.push_back(
        {std::string(info.name),
         std::string(ToString(p.rtc_base.value)) + "," + std::string(ToString(p.rtc_policy.value)),
         std::string(ToString(p.pit_policy.value)), std::string(ToString(p.hpet.value)),
         std::string(ToString(p.kvmclock.value)), std::string(ToString(p.hv_time.value)),
         std::string(ToString(p.hyperv.value)), std::string(info.description)});
    rows.push_back({"", "", "", "", "", "", "", "aliases: " + aliases});
  }
  std::cout << FormatTable(rows);
}

// The QEMU to render for: a shipped table when --qemu-version says so, else a probe of the
// binary (--qemu, $KVMRUN_QEMU or PATH), else the 7.2 table when no QEMU is installed.
// The accelerator `kvmrun run` would choose with this QEMU here: the KVM diagnosis's verdict
// (its probe guest's, cached per boot; never booted for a policy), said plainly when it is only
// assumed or is TCG.
Accel AccelRunWouldChoose(const std::string& qemu, ProcessRunner& runner, std::string& note) {
  auto host = MakeKvmHost();
  const KvmDiagnosis kvm =
      DiagnoseKvmForQemu(qemu, *host, runner, ProbeCache(), "", nullptr, false);
  if (!kvm.usable) {
    note = "rendered for TCG, which 'kvmrun run' uses on this host: " + kvm.summary +
           " (--accel kvm renders for a host where KVM works)";
    return Accel::kTcg;
  }
  if (kvm.functional_check_assumed) {
    note =
        "rendered for KVM: /dev/kvm passes the device checks here, but no probe guest has "
        "proved it yet ('kvmrun doctor' does; 'run' falls back to TCG if it fails)";
  }
  return Accel::kKvm;
}

RenderTarget ResolveTarget(const po::variables_map& vm) {
  RenderTarget target;
  const std::string accel = vm.count("accel") ? vm["accel"].as<std::string>() : "auto";
  const bool choose = accel == "auto";
  target.accel = choose ? Accel::kKvm : ParseAccel(accel);
  const auto cpu_model = [&] {
    target.cpu_model =
        vm.count("cpu") ? vm["cpu"].as<std::string>() : std::string(DefaultCpuModel(target.accel));
  };
  cpu_model();
  std::string version = kDefaultQemuVersion;
  if (vm.count("qemu-version")) {
    version = vm["qemu-version"].as<std::string>();
  } else {
    std::string qemu;
    try {
      qemu = FindQemu(vm.count("qemu") ? vm["qemu"].as<std::string>() : "");
    } catch (const UsageError&) {
      if (vm.count("qemu")) throw;
    }
    if (!qemu.empty()) {
      auto runner = MakeProcessRunner();
      target.caps = ProbeQemuCached(qemu, *runner, ProbeCache()).caps;
      target.caps_source = "probed " + qemu;
      if (choose) {
        target.accel = AccelRunWouldChoose(qemu, *runner, target.accel_note);
        cpu_model();
      }
      // The binary here runs on this host's KVM: what that cannot give is left out too.
      if (auto kvm = MakeKvmHost(); target.accel == Accel::kKvm && kvm->OpenError() == 0) {
        target.host_gaps = HostHypervGaps(*kvm);
        if (!target.host_gaps.empty()) target.caps_source += " on this host's KVM";
      }
      return target;
    }
  }
  target.caps = ShippedCapabilitiesFor(version);
  target.caps_source = "shipped table for QEMU " + version;
  if (choose) {
    target.accel_note = "rendered for KVM on a host with QEMU " + version +
                        " (a table, not this host; --accel tcg renders for TCG)";
  }
  return target;
}

}  // namespace

int PolicyCommand(const Args& args) {
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("os", po::value<std::string>()->value_name("OS"), "guest OS (see --list); aliases allowed")
      ("list", "list the guest OS catalog with each OS's policy")
      ("qemu", po::value<std::string>()->value_name("PATH"),
       "render for this qemu-system-x86_64, probed (default: $KVMRUN_QEMU, then PATH)")
      ("qemu-version", po::value<std::string>()->value_name("X.Y"),
       "render for a shipped capability table instead (2.12, 5.2, 7.2, 9.2, 10.0); the 7.2 table is "
       "also the default when no QEMU is installed")
      ("accel", po::value<std::string>()->value_name("auto|kvm|tcg"),
       "the accelerator to render for (default auto: the one 'kvmrun run' would use here,\n"
       "by the KVM probe guest's verdict; kvm for a --qemu-version table)")
      ("cpu", po::value<std::string>()->value_name("MODEL"),
       "CPU model the policy's CPU features are added to (default: host on kvm, max on tcg)")
      ("format", po::value<std::string>()->value_name(JoinNames(kAllFormats, "|")),
       "output: argv (one per line), shell (default), json, libvirt-xml")
      ("explain", "print a table of each setting, its QEMU arguments, reason and source");
  // clang-format on
  AddOverrideOptions(options);

  const po::variables_map vm = Parse(args, options);
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun policy --os OS [--qemu PATH | --qemu-version X.Y] [--accel kvm|tcg] [overrides] "
        "[--format F | --explain]\n       kvmrun policy --list",
        "Shows the clock policy kvmrun gives a guest OS (RTC base, lost-tick policy and clock,\n"
        "PIT lost-tick policy, HPET, Hyper-V clock and enlightenments, kvm-clock), why, and the\n"
        "QEMU arguments it renders to for a QEMU version and accelerator (by default the one\n"
        "'kvmrun run' would use here). Every setting the policy decides is written, QEMU's\n"
        "default or not; 'other' keeps QEMU's defaults. Overrides win over the OS defaults. "
        "--explain also shows the\n"
        "hardware 'kvmrun run' gives the OS (size, firmware, TPM, buses, network card, display).\n"
        "Exit: 0 shown, 2 an unknown OS, a bad value or bad usage (the valid ones named).\n\n"
        "Examples:\n"
        "  kvmrun policy --os windows-11 --explain\n"
        "  kvmrun policy --os linux --format libvirt-xml\n"
        "  kvmrun policy --os linux --qemu-version 2.12 --accel kvm --format shell",
        options);
    return kExitOk;
  }
  RejectConflicts(vm, {"list", "os"});
  RejectConflicts(vm, {"explain", "format"});
  RejectConflicts(vm, {"qemu", "qemu-version"});
  if (vm.count("list")) {
    PrintCatalog();
    return kExitOk;
  }
  if (!vm.count("os")) throw UsageError("--os is required (or --list); see 'kvmrun policy --help'");

  const GuestOs os = ParseGuestOs(vm["os"].as<std::string>());
  const ClockOverrides overrides = GetOverrides(vm);
  const Format format =
      vm.count("format") ? ParseFormat(vm["format"].as<std::string>()) : Format::kShell;
  const RenderTarget target = ResolveTarget(vm);
  const ClockPolicy policy = MakeClockPolicy(os, overrides);
  const ClockRendering rendering = RenderClock(policy, target.caps, target.accel, target.host_gaps);

  if (vm.count("explain")) {
    VmSpec spec;
    spec.os = os;
    std::cout << ExplainTable(policy, rendering, target) << "\n" << HardwareTable(spec);
    return kExitOk;
  }
  const std::vector<std::string> argv = ClockArgv(rendering, target.cpu_model);
  switch (format) {
    case Format::kArgv:
      for (const std::string& arg : argv) std::cout << arg << "\n";
      break;
    case Format::kShell:
      std::cout << ShellJoin(argv) << "\n";
      break;
    case Format::kJson:
      std::cout << DumpJson(PolicyReportJson(policy, rendering, target), 2) << "\n";
      break;
    case Format::kLibvirtXml:
      std::cout << LibvirtFeaturesXml(policy) << LibvirtClockXml(policy);
      break;
  }
  std::vector<std::string> notes = rendering.Notes();
  if (!target.accel_note.empty()) notes.insert(notes.begin(), "accel: " + target.accel_note);
  for (const std::string& note : notes) {
    if (format == Format::kArgv || format == Format::kShell) std::cerr << "note: " << note << "\n";
  }
  return kExitOk;
}

}  // namespace kvmrun::cli

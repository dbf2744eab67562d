// kvmrun ps: the named VMs this user runs.
#include <algorithm>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "kvmrun/qmp_codec.h"
#include "kvmrun/vm_registry.h"
#include "policy/text_table.h"

namespace kvmrun::cli {
namespace {

std::string Uptime(std::time_t started) {
  if (started <= 0) return "?";
  long s = static_cast<long>(std::time(nullptr) - started);
  if (s < 0) s = 0;
  char text[32];
  if (s < 3600) {
    std::snprintf(text, sizeof(text), "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(text, sizeof(text), "%ldh%02ldm", s / 3600, s / 60 % 60);
  }
  return text;
}

}  // namespace

int PsCommand(const Args& args) {
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("all,a", "also the named VMs that do not run, with how their last run ended and where\n"
       "their kept state is (UEFI variables, TPM, the last run's log)")
      ("json", "print the VMs as a JSON array");
  // clang-format on
  const po::variables_map vm = Parse(args, options);
  if (vm.count("help")) {
    std::cout << HelpText("kvmrun ps [--all] [--json]",
                          "Lists the named VMs this user runs ('kvmrun run --name NAME'): name,\n"
                          "supervisor pid, accelerator, guest OS, QEMU version, uptime. The\n"
                          "directories of VMs that died without cleaning up are removed. --all\n"
                          "adds the named VMs that ran before: how the last run ended, and the\n"
                          "directory that keeps their state (remove it to forget the VM).\n"
                          "Exit: 0 listed (none is not an error), 2 bad usage.\n\n"
                          "Examples:\n"
                          "  kvmrun ps\n"
                          "  kvmrun ps --all\n"
                          "  kvmrun ps --json",
                          options);
    return kExitOk;
  }
  const std::vector<NamedVm> vms = ListNamedVms();
  const bool all = vm.count("all") > 0;
  std::vector<LastRun> ended;
  if (all) {
    for (LastRun& run : ListLastRuns()) {
      const bool running =
          std::any_of(vms.begin(), vms.end(), [&](const NamedVm& v) { return v.name == run.name; });
      if (!running) ended.push_back(std::move(run));
    }
  }
  if (vm.count("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const NamedVm& v : vms) {
      nlohmann::json entry = v.info;
      entry["name"] = v.name;
      entry["dir"] = v.dir;
      entry["running"] = true;
      out.push_back(entry);
    }
    for (const LastRun& run : ended) {
      out.push_back({{"name", run.name},
                     {"running", false},
                     {"state_dir", DefaultStateDir(run.name)},
                     {"last_run", LastRunToJson(run)}});
    }
    std::cout << DumpJson(out, 2) << std::endl;
    return kExitOk;
  }
  std::vector<TextRow> rows = {{"NAME", "PID", "ACCEL", "OS", "QEMU", "UPTIME"}};
  if (all) rows[0].push_back("LAST RUN");
  for (const NamedVm& v : vms) {
    rows.push_back({v.name, v.supervisor_pid > 0 ? std::to_string(v.supervisor_pid) : "?",
                    v.info.value("accel", "?"), v.info.value("os", "?"),
                    v.info.value("qemu_version", "?"), Uptime(v.started)});
    if (all) rows.back().push_back("running");
  }
  for (const LastRun& run : ended) {
    rows.push_back({run.name, "-", "-", "-", "-", "-",
                    run.summary + " (exit " + std::to_string(run.exit_code) + ")"});
  }
  std::cout << FormatTable(rows);
  if (all && !ended.empty()) {
    std::cout << "kept state: "
              << std::filesystem::path(DefaultStateDir("x")).parent_path().string()
              << "/NAME (remove it to forget a VM)\n";
  }
  return kExitOk;
}

}  // namespace kvmrun::cli

// kvmrun ps: the named VMs this user runs.
#include <ctime>
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
      ("json", "print the VMs as a JSON array");
  // clang-format on
  const po::variables_map vm = Parse(args, options);
  if (vm.count("help")) {
    std::cout << HelpText("kvmrun ps [--json]",
                          "Lists the named VMs this user runs ('kvmrun run --name NAME'): name,\n"
                          "supervisor pid, accelerator, guest OS, QEMU version, uptime. The\n"
                          "directories of VMs that died without cleaning up are removed.\n"
                          "Exit: 0 listed (none is not an error), 2 bad usage.\n\n"
                          "Examples:\n"
                          "  kvmrun ps\n"
                          "  kvmrun ps --json",
                          options);
    return kExitOk;
  }
  const std::vector<NamedVm> vms = ListNamedVms();
  if (vm.count("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const NamedVm& v : vms) {
      nlohmann::json entry = v.info;
      entry["name"] = v.name;
      entry["dir"] = v.dir;
      out.push_back(entry);
    }
    std::cout << DumpJson(out, 2) << std::endl;
    return kExitOk;
  }
  std::vector<TextRow> rows = {{"NAME", "PID", "ACCEL", "OS", "QEMU", "UPTIME"}};
  for (const NamedVm& v : vms) {
    rows.push_back({v.name, v.supervisor_pid > 0 ? std::to_string(v.supervisor_pid) : "?",
                    v.info.value("accel", "?"), v.info.value("os", "?"),
                    v.info.value("qemu_version", "?"), Uptime(v.started)});
  }
  std::cout << FormatTable(rows);
  return kExitOk;
}

}  // namespace kvmrun::cli

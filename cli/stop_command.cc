// kvmrun stop: end a named VM through its supervisor's shutdown ladder.
#include <iostream>

#include "cli/commands.h"
#include "core/safe_text.h"
#include "kvmrun/error.h"
#include "kvmrun/qmp_codec.h"
#include "kvmrun/vm_registry.h"

namespace kvmrun::cli {

int StopCommand(const Args& args) {
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("timeout", po::value<double>()->default_value(60)->value_name("S"),
       "how long to wait for the VM to end")
      ("json", "print how the VM ended as JSON (its last-run record)")
      ("name", po::value<std::string>()->value_name("NAME"), "the VM");
  // clang-format on
  po::positional_options_description positional;
  positional.add("name", 1);
  const po::variables_map vm = Parse(args, options, &positional);
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun stop NAME [--timeout S] [--json]",
        "Stops the named VM the way SIGTERM stops a foreground run: its supervisor asks the\n"
        "guest to power off (the power button, then its guest agent; its run's --grace),\n"
        "then quits QEMU, then SIGTERM, then SIGKILL. Waits until the VM is gone, then says\n"
        "which step ended it: a guest that did not power off is a forced stop, never a clean\n"
        "one. A second 'kvmrun stop' while one waits kills QEMU at once. 'kvmrun ps --all'\n"
        "shows how each named VM's last run ended.\n"
        "Exit: 4 the guest powered off when asked, 5 it did not and QEMU was stopped (forced),\n"
        "the run's own code when it ended otherwise (0: it had powered off by itself), 1 still\n"
        "running after --timeout, or ended without a record of how (its supervisor was killed),\n"
        "2 no such VM.\n\n"
        "Examples:\n"
        "  kvmrun stop web\n"
        "  kvmrun stop web --timeout 120 --json",
        options, &positional);
    return kExitOk;
  }
  const std::string name = RequiredName(vm);
  const auto timeout = PositiveSeconds(vm["timeout"].as<double>(), "--timeout");
  RunningVm(name);  // no such VM: exit 2, saying so
  std::cerr << "kvmrun stop: stopping '" << name << "'" << std::endl;
  const StopResult result = StopNamedVm(name, timeout);
  const std::string took = SecondsText(result.took);
  if (!result.ended) {
    if (vm.count("json")) std::cout << DumpJson({{"name", name}, {"ended", nullptr}}, 2) << "\n";
    std::cerr << "kvmrun stop: '" << name << "' ended in " << took
              << ", but left no record of how (its supervisor did not finish)" << std::endl;
    return kExitFailure;
  }
  const LastRun& ended = *result.ended;
  if (vm.count("json")) {
    nlohmann::json out = LastRunToJson(ended);
    out["took_ms"] = result.took.count();
    std::cout << DumpJson(out, 2) << std::endl;
  }
  std::cerr << "kvmrun stop: '" << name << "' ended in " << took << ": " << SafeText(ended.summary)
            << std::endl;
  return ended.exit_code;
}

}  // namespace kvmrun::cli

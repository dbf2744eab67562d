// kvmrun stop: end a named VM through its supervisor's shutdown ladder.
#include <signal.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "kvmrun/error.h"
#include "kvmrun/vm_registry.h"

namespace kvmrun::cli {

int StopCommand(const Args& args) {
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("timeout", po::value<double>()->default_value(60)->value_name("S"),
       "how long to wait for the VM to end")
      ("name", po::value<std::string>()->value_name("NAME"), "the VM");
  // clang-format on
  po::positional_options_description positional;
  positional.add("name", 1);
  const po::variables_map vm = Parse(args, options, &positional);
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun stop NAME [--timeout S]",
        "Stops the named VM the way SIGTERM stops a foreground run: its supervisor asks the\n"
        "guest to power off (its --grace), then quits QEMU, then SIGTERM, then SIGKILL. Waits\n"
        "until the VM is gone. A second 'kvmrun stop' while one waits kills QEMU at once.\n"
        "Exit: 0 stopped, 1 still running after --timeout, 2 no such VM.\n\n"
        "Examples:\n"
        "  kvmrun stop web\n"
        "  kvmrun stop web --timeout 120",
        options);
    return kExitOk;
  }
  const std::string name = RequiredName(vm);
  const auto timeout = PositiveSeconds(vm["timeout"].as<double>(), "--timeout");
  const NamedVm found = RunningVm(name);
  if (found.supervisor_pid <= 0) {
    throw Error("VM '" + name + "' is starting and has no supervisor pid yet; try again");
  }
  const auto start = std::chrono::steady_clock::now();
  kill(found.supervisor_pid, SIGTERM);
  std::cerr << "kvmrun stop: stopping '" << name << "' (pid " << found.supervisor_pid << ")"
            << std::endl;
  while (FindNamedVm(name)) {
    if (std::chrono::steady_clock::now() - start > timeout) {
      throw Error("VM '" + name + "' is still running after " +
                  std::to_string(timeout.count() / 1000) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::cerr << "kvmrun stop: '" << name << "' stopped in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - start)
                       .count() /
                   1000.0
            << " s" << std::endl;
  return kExitOk;
}

}  // namespace kvmrun::cli

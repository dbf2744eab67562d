// kvmrun sync: set a running guest's wall clock from the host's through its agent.
#include <iostream>

#include "cli/commands.h"
#include "kvmrun/error.h"
#include "kvmrun/guest_clock.h"
#include "kvmrun/qmp_codec.h"

namespace kvmrun::cli {

int SyncCommand(const Args& args) {
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("name", po::value<std::string>()->value_name("NAME|PATH"),
       "the VM's name, or the path of a guest agent socket")
      ("json", "print the offsets before and after as JSON");
  // clang-format on
  AddGuestClockOptions(options, 10);
  po::positional_options_description positional;
  positional.add("name", 1);
  const po::variables_map vm = Parse(args, options, &positional);
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun sync NAME [--max-offset S] [--json]",
        "Sets the guest's wall clock from the host's (QEMU guest agent: guest-set-time with\n"
        "the host's CLOCK_REALTIME plus the measured one-way delay) and measures the offset\n"
        "before and after. For a guest whose clock fell behind while the VM was paused,\n"
        "stopped or the host slept. The clock is stepped, not slewed: a guest running\n"
        "chrony or ntpd sees a step too (see docs/timekeeping.md, 'Guest wall time').\n"
        "Exit: 0 set and within --max-offset, 3 still beyond it, 1 no agent or the agent\n"
        "refused, 2 bad usage or no such VM.\n\n"
        "Examples:\n"
        "  kvmrun sync web\n"
        "  kvmrun sync web --max-offset 0.5 --json",
        options, &positional);
    return kExitOk;
  }
  const std::string given = RequiredName(vm);
  const auto max_offset = MaxOffsetOption(vm);
  const auto agent_wait = AgentWaitOption(vm);
  const std::string socket = given.find('/') == std::string::npos ? AgentSocketOf(given) : given;
  const auto agent = ConnectGuestAgent(socket, agent_wait);
  const ResyncResult result = ResyncGuestClock(*agent);
  const bool within = result.after.SurelyOffNs() <= std::chrono::nanoseconds(max_offset).count();
  if (vm.count("json")) {
    nlohmann::json json = ResyncResultToJson(result);
    json["within_max_offset"] = within;
    std::cout << DumpJson(json, 2) << std::endl;
  } else {
    std::cout << "kvmrun sync: " << given << ": " << FormatResync(result) << "\n";
  }
  return within ? kExitOk : kExitMismatch;
}

}  // namespace kvmrun::cli

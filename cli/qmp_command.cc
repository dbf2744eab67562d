// kvmrun qmp: run one QMP command against a QEMU's monitor socket, or watch its events.
#include <unistd.h>

#include <iostream>

#include "cli/commands.h"
#include "kvmrun/error.h"
#include "kvmrun/qmp_client.h"
#include "kvmrun/qmp_codec.h"

namespace kvmrun::cli {
namespace {

nlohmann::json ParseArguments(const std::string& text) {
  std::string why;
  try {
    nlohmann::json arguments = ParseBoundedJson(text);
    if (arguments.is_object()) return arguments;
  } catch (const JsonTooDeep& e) {
    why = std::string(" (") + e.what() + ")";
  } catch (const nlohmann::json::exception&) {
  }
  const std::string shown = text.size() > 200 ? text.substr(0, 200) + "..." : text;
  throw UsageError("ARGS-JSON: '" + shown + "' is not a JSON object" + why +
                   "; e.g. '{\"path\": \"/machine\"}'");
}

void Print(const nlohmann::json& value, bool pretty) {
  std::cout << (pretty ? DumpJson(value, 2) : DumpJson(value)) << std::endl;
}

nlohmann::json EventJson(const QmpEvent& event) {
  return {{"event", event.name}, {"data", event.data}, {"timestamp", event.timestamp}};
}

// Prints events as JSON lines until `count` (0: unlimited) were printed, `timeout` passed or
// the connection ended. Falling short of `count` is an error.
int StreamEvents(QmpClient& client, std::size_t count,
                 std::optional<std::chrono::milliseconds> timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout.value_or(std::chrono::hours(24 * 365));
  for (std::size_t printed = 0; count == 0 || printed < count; ++printed) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    try {
      Print(EventJson(client.WaitForEvent("", std::max(left, std::chrono::milliseconds(0)))),
            false);
    } catch (const QmpTimeout&) {
      if (count == 0) return kExitOk;
      throw QmpTimeout("got " + std::to_string(printed) + " of " + std::to_string(count) +
                       " events before the timeout");
    } catch (const QmpDisconnected&) {
      if (count == 0) return kExitOk;
      throw;
    }
  }
  return kExitOk;
}

}  // namespace

int QmpCommand(const Args& args) {
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("wait", po::value<double>()->default_value(0)->value_name("S"),
       "keep trying for S seconds while the socket is missing or refuses connections")
      ("qmp-socket", po::value<std::string>()->value_name("PATH|NAME"),
       "the QMP Unix socket (QEMU: -chardev socket,path=PATH,server=on,wait=off "
       "-mon chardev=...,mode=control), or the name of a VM kvmrun runs")
      ("events", "print events as JSON lines (after COMMAND, if one is given)")
      ("count", po::value<long long>()->value_name("N"), "with --events: stop after N events")
      ("timeout", po::value<double>()->value_name("S"),
       "seconds to wait for the greeting and the reply (default 10) or, with --events, for the "
       "events")
      ("command", po::value<std::string>(), "the QMP command")
      ("arguments", po::value<std::string>(), "its arguments as a JSON object");
  // clang-format on
  po::positional_options_description positional;
  positional.add("command", 1).add("arguments", 1);

  const po::variables_map vm =
      Parse(WithNewOptionNames(args, {{"socket", "qmp-socket"}}), options, &positional);
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun qmp --qmp-socket PATH|NAME COMMAND [ARGS-JSON]\n"
        "       kvmrun qmp --qmp-socket PATH|NAME --events [--count N] [--timeout S] [COMMAND "
        "[ARGS-JSON]]",
        "Runs one QMP command on a running QEMU and prints its return value as JSON (pretty on\n"
        "a terminal, one line otherwise), or prints the events QEMU sends as JSON lines.\n"
        "Exit 0 on success, 1 on a QMP error (its class and description on stderr) or a lost\n"
        "connection, 2 on bad usage.\n\n"
        "Examples:\n"
        "  kvmrun qmp --qmp-socket /run/vm/qmp.sock query-kvm\n"
        "  kvmrun qmp --qmp-socket NAME qom-get '{\"path\": \"/machine\", \"property\": "
        "\"hpet\"}'\n"
        "  kvmrun qmp --qmp-socket NAME --events --count 1 stop",
        options, &positional);
    return kExitOk;
  }
  if (!vm.count("qmp-socket")) {
    throw UsageError("--qmp-socket PATH|NAME is required; see 'kvmrun qmp --help'");
  }
  const std::string socket = vm["qmp-socket"].as<std::string>();
  const bool events = vm.count("events") > 0;
  if (!events && !vm.count("command")) {
    throw UsageError("a COMMAND (e.g. query-status) or --events is required");
  }
  if (!events && vm.count("count")) throw UsageError("--count needs --events");
  // Read as signed: Boost reads "-1" as 2^64-1 into an unsigned type.
  if (vm.count("count") && vm["count"].as<long long>() < 1) {
    throw UsageError("--count: invalid value '" + std::to_string(vm["count"].as<long long>()) +
                     "'; valid: a number of events of at least 1");
  }
  const nlohmann::json arguments =
      vm.count("arguments") ? ParseArguments(vm["arguments"].as<std::string>()) : nlohmann::json();
  std::optional<std::chrono::milliseconds> timeout;
  if (vm.count("timeout")) timeout = PositiveSeconds(vm["timeout"].as<double>(), "--timeout");

  QmpClient client(ConnectQmpSocket(QmpSocketOf(socket), WaitOption(vm)),
                   timeout.value_or(QmpClient::kDefaultTimeout));
  if (vm.count("command")) {
    const nlohmann::json reply = client.Execute(
        vm["command"].as<std::string>(), arguments,
        events ? QmpClient::kDefaultTimeout : timeout.value_or(QmpClient::kDefaultTimeout));
    Print(reply, isatty(STDOUT_FILENO) != 0);
  }
  if (!events) return kExitOk;
  return StreamEvents(client,
                      vm.count("count") ? static_cast<std::size_t>(vm["count"].as<long long>()) : 0,
                      timeout);
}

}  // namespace kvmrun::cli

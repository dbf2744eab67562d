// kvmrun exec: run a command in a named VM through the QEMU guest agent.
#include <unistd.h>

#include <iostream>
#include <iterator>

#include "cli/commands.h"
#include "kvmrun/error.h"
#include "kvmrun/guest_agent.h"

namespace kvmrun::cli {
namespace {

std::chrono::milliseconds Seconds(const po::variables_map& vm, const char* option) {
  return PositiveSeconds(vm[option].as<double>(), std::string("--") + option);
}

void WriteAll(std::ostream& out, const std::string& bytes) {
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.flush();
}

// ExitStatusOf never folds a failure into 0; the status it stood in for is said.
int ExitStatusFor(const GuestExecResult& result) {
  if (ExitStatusFolded(result)) {
    std::cerr << "kvmrun exec: the command exited with status " << result.exit_code
              << ", which does not fit an exit status: exiting 255" << std::endl;
  }
  return ExitStatusOf(result);
}

}  // namespace

int ExecCommand(const Args& args) {
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("timeout", po::value<double>()->default_value(600)->value_name("S"),
       "kill the command in the guest after S seconds")
      ("agent-wait",
       po::value<double>()
           ->default_value(std::chrono::duration<double>(GuestAgent::kDefaultAgentWait).count())
           ->value_name("S"),
       "how long to wait for the guest agent (a guest that is still booting)")
      ("env", po::value<std::vector<std::string>>()->value_name("NAME=VALUE"),
       "set a variable for the command (repeatable)")
      ("name", po::value<std::string>()->value_name("NAME"), "the VM")
      ("command", po::value<std::vector<std::string>>()->value_name("CMD"), "the command");
  // clang-format on
  po::positional_options_description positional;
  positional.add("name", 1).add("command", -1);
  const po::variables_map vm =
      Parse(WithNewOptionNames(args, {{"agent-timeout", "agent-wait"}}), options, &positional);
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun exec NAME [--timeout S] [--env NAME=VALUE]... -- CMD [ARGS...]",
        "Runs CMD in the named VM through the QEMU guest agent (qemu-guest-agent in the guest)\n"
        "and exits with its exit status (128+N when a signal N killed it; a status outside\n"
        "0-255, such as a Windows guest's 32-bit code, exits 255 and is printed), its stdout\n"
        "and stderr on kvmrun's. stdin is passed to the command when it is not a terminal. The\n"
        "output comes when the command ends (qemu-ga returns it then). CMD is searched in the\n"
        "agent's PATH; no shell is involved unless you run one ('sh -c ...').\n"
        "kvmrun's own failures say so on stderr ('kvmrun exec: ...') and exit 2 (no such VM,\n"
        "bad usage) or 1 (no agent answered, the command timed out and was killed).\n\n"
        "Examples:\n"
        "  kvmrun exec vm -- uname -r\n"
        "  kvmrun exec vm --timeout 1800 -- sh -c 'cd /mnt/src && make check'\n"
        "  tar c . | kvmrun exec vm -- tar x -C /tmp",
        options, &positional);
    return kExitOk;
  }
  const std::string name = RequiredName(vm);
  if (!vm.count("command")) throw UsageError("a command is required after the name: NAME -- CMD");
  GuestExecRequest request;
  request.argv = vm["command"].as<std::vector<std::string>>();
  request.timeout = Seconds(vm, "timeout");
  if (vm.count("env")) request.env = vm["env"].as<std::vector<std::string>>();
  for (const std::string& env : request.env) {
    if (env.find('=') == std::string::npos || env.front() == '=') {
      throw UsageError("--env: invalid value '" + env + "'; valid: NAME=VALUE");
    }
  }
  const auto agent_timeout = Seconds(vm, "agent-wait");

  const std::string socket = AgentSocketOf(name);
  if (isatty(STDIN_FILENO) == 0) {
    request.input = std::string(std::istreambuf_iterator<char>(std::cin), {});
  }
  const GuestExecResult result = ConnectGuestAgent(socket, agent_timeout)->Exec(request);
  WriteAll(std::cout, result.out);
  WriteAll(std::cerr, result.err);
  if (result.out_truncated || result.err_truncated) {
    std::cerr << "kvmrun exec: the guest agent cut the output at its 16 MiB limit" << std::endl;
  }
  return ExitStatusFor(result);
}

}  // namespace kvmrun::cli

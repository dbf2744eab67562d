// Runs a program to completion for a test: argv in, exit code and output out. Used to drive
// the kvmrun CLI and QEMU from tests without going through the code under test.
#ifndef KVMRUN_TESTS_SUPPORT_RUN_COMMAND_H_
#define KVMRUN_TESTS_SUPPORT_RUN_COMMAND_H_

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace kvmrun::testing {

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal (see signal) or timed out
  int signal = 0;
  bool timed_out = false;
  std::string out;
  std::string err;
};

struct CommandOptions {
  std::string stdin_text;
  std::chrono::milliseconds timeout{60000};
  std::vector<std::string> extra_env;  // "NAME=value", replacing any variable of that name
};

CommandResult RunCommand(const std::vector<std::string>& argv, const CommandOptions& options = {});

// The kvmrun CLI built alongside the tests, with `args` after it.
CommandResult RunKvmrun(const std::vector<std::string>& args, const CommandOptions& options = {});

// Lines of `text`, without the newlines.
std::vector<std::string> Lines(const std::string& text);

// The options a `kvmrun SUBCOMMAND --help` text lists: name (without "--") -> its placeholder,
// "" for a flag.
std::map<std::string, std::string> HelpOptions(const std::string& help);

}  // namespace kvmrun::testing

#endif  // KVMRUN_TESTS_SUPPORT_RUN_COMMAND_H_

// libFuzzer target for the CLI's argument parsing: any argument vector given to `kvmrun run`
// or `kvmrun boot-test` must parse or fail with UsageError (exit 2), never crash, hang or
// throw anything else. Parsing only: nothing is started.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "kvmrun/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks the subcommand; the rest is the arguments, separated by NUL.
  const bool boot_test = data[0] & 1;
  std::vector<std::string> args(1);
  for (std::size_t i = 1; i < size; ++i) {
    if (data[i] == '\0') {
      args.emplace_back();
    } else {
      args.back() += static_cast<char>(data[i]);
    }
  }
  if (args.size() > 64) return 0;
  try {
    if (boot_test) {
      kvmrun::cli::ParseBootTestArgs(args);
    } else {
      kvmrun::cli::ParseRunArgs(args);
    }
  } catch (const kvmrun::UsageError&) {
    // Bad input is expected; any other exception escaping is a bug the fuzzer reports.
  }
  return 0;
}

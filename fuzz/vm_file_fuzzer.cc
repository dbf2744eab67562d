// libFuzzer target for VM files: any bytes as a TOML or JSON VM file given to `kvmrun run`
// parse or fail with UsageError naming the file, never crash, recurse without bound or throw
// anything else. The first byte picks the format; the rest is the file.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/commands.h"
#include "kvmrun/error.h"

namespace {

// One scratch directory for the process, removed at exit.
const std::string& ScratchDir() {
  // Never destroyed: the exit handler below still uses it.
  static const std::string& dir = *new std::string([] {
    std::string pattern = "/tmp/kvmrun-vm-file-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    std::atexit([] {
      std::remove((ScratchDir() + "/vm.toml").c_str());
      std::remove((ScratchDir() + "/vm.json").c_str());
      rmdir(ScratchDir().c_str());
    });
    return pattern;
  }());
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string path = ScratchDir() + ((data[0] & 1) ? "/vm.json" : "/vm.toml");
  FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) std::abort();
  std::fwrite(data + 1, 1, size - 1, file);
  std::fclose(file);
  try {
    kvmrun::cli::ParseRunArgs({path});
  } catch (const kvmrun::UsageError&) {
    // Bad input is expected; any other exception escaping is a bug the fuzzer reports.
  }
  return 0;
}

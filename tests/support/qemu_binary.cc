#include "tests/support/qemu_binary.h"

#include <unistd.h>

#include <cstdlib>
#include <sstream>

namespace kvmrun::testing {

std::string TestQemuBinary() {
  if (const char* env = std::getenv("KVMRUN_TEST_QEMU"); env != nullptr && *env != '\0') {
    return env;
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/qemu-system-x86_64";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

}  // namespace kvmrun::testing

#include "tests/support/qemu_binary.h"

#include <unistd.h>

#include <cstdlib>
#include <sstream>

namespace kvmrun::testing {
namespace {

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

}  // namespace

std::string TestQemuBinary() {
  if (const std::string env = Env("KVMRUN_TEST_QEMU"); !env.empty()) return env;
  const std::string path = Env("PATH");
  std::stringstream dirs(path.empty() ? "/usr/bin:/bin" : path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/qemu-system-x86_64";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::vector<std::string> QemuLabels() { return {"system", "backports"}; }

std::string QemuBinary(const std::string& label) {
  if (label == "system") return TestQemuBinary();
  if (const std::string env = Env("KVMRUN_TEST_QEMU_BACKPORTS"); !env.empty()) return env;
  const std::string fetched =
      std::string(KVMRUN_BUILD_DIR) + "/qemu-backports/root/usr/bin/qemu-system-x86_64";
  return access(fetched.c_str(), X_OK) == 0 ? fetched : "";
}

std::string MissingQemuReason(const std::string& label) {
  if (label == "system") {
    return "qemu-system-x86_64 not installed (apt-get install qemu-system-x86, or set "
           "KVMRUN_TEST_QEMU)";
  }
  return "QEMU 10.0 from bookworm-backports not fetched (run scripts/fetch-qemu, or set "
         "KVMRUN_TEST_QEMU_BACKPORTS)";
}

}  // namespace kvmrun::testing

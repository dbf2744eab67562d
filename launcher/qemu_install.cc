#include "launcher/qemu_install.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

namespace kvmrun {
namespace {

namespace fs = std::filesystem;

// <prefix> for <prefix>/bin/qemu-system-x86_64, or empty for the system's own locations.
fs::path UnpackedPrefix(const std::string& qemu) {
  std::error_code ec;
  const fs::path binary = fs::canonical(qemu, ec);
  if (ec) return {};
  const fs::path prefix = binary.parent_path().parent_path();
  if (prefix == "/usr" || prefix == "/usr/local" || prefix == "/") return {};
  return prefix;
}

}  // namespace

std::string FindExecutable(const std::string& name, const std::vector<std::string>& first_dirs) {
  std::vector<std::string> dirs = first_dirs;
  const char* path = std::getenv("PATH");
  std::istringstream entries(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(entries, dir, ':');) dirs.push_back(dir.empty() ? "." : dir);
  for (const std::string& dir : dirs) {
    const std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0 && fs::is_regular_file(candidate)) return candidate;
  }
  return "";
}

std::vector<std::string> FirmwareDirsFor(const std::string& qemu) {
  const fs::path prefix = UnpackedPrefix(qemu);
  if (prefix.empty()) return {};
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const fs::path& dir : {prefix / "share/qemu", prefix / "share/seabios",
                              fs::path("/usr/share/qemu"), fs::path("/usr/share/seabios")}) {
    if (fs::is_directory(dir, ec)) dirs.push_back(dir.string());
  }
  return dirs;
}

std::vector<std::string> EnvironmentFor(const std::string& qemu) {
  const fs::path prefix = UnpackedPrefix(qemu);
  if (prefix.empty()) return {};
  std::error_code ec;
  for (const fs::path& dir : {prefix / "lib/x86_64-linux-gnu/qemu", prefix / "lib/qemu"}) {
    if (fs::is_directory(dir, ec)) return {"QEMU_MODULE_DIR=" + dir.string()};
  }
  return {};
}

SpawnRequest QemuSpawnRequest(const std::string& qemu, const std::vector<std::string>& args) {
  SpawnRequest request;
  request.executable = qemu;
  request.argv = {qemu};
  request.argv.insert(request.argv.end(), args.begin(), args.end());
  request.extra_env = EnvironmentFor(qemu);
  return request;
}

}  // namespace kvmrun

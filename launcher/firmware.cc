#include "launcher/firmware.h"

#include <filesystem>

namespace kvmrun {

std::vector<std::string> FirmwareDirsFor(const std::string& qemu) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path binary = fs::canonical(qemu, ec);
  if (ec) return {};
  const fs::path prefix = binary.parent_path().parent_path();
  if (prefix == "/usr" || prefix == "/usr/local" || prefix == "/") return {};
  std::vector<std::string> dirs;
  for (const fs::path& dir : {prefix / "share/qemu", prefix / "share/seabios",
                              fs::path("/usr/share/qemu"), fs::path("/usr/share/seabios")}) {
    if (fs::is_directory(dir, ec)) dirs.push_back(dir.string());
  }
  return dirs;
}

}  // namespace kvmrun

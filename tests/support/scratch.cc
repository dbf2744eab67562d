#include "tests/support/scratch.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace kvmrun::testing {

namespace fs = std::filesystem;

Scratch::Scratch() {
  chmod(dir_.path().c_str(), 0755);  // an unprivileged user must reach the files
  fs::create_directories(Run());
  fs::create_directories(Cache());
  // Sticky, as /tmp is: writable by that user too, yet nobody can rename what another made.
  chmod(Run().c_str(), 01777);
  chmod(Cache().c_str(), 01777);
}

std::string Scratch::File(const std::string& name, const std::string& content, mode_t mode) const {
  const std::string path = Path(name);
  std::ofstream(path, std::ios::binary) << content;
  chmod(path.c_str(), mode);
  return path;
}

std::string Scratch::Dir(const std::string& name) const {
  fs::create_directories(Path(name));
  return Path(name);
}

std::vector<std::string> Scratch::Env() const {
  return {"XDG_RUNTIME_DIR=" + Run(), "XDG_CACHE_HOME=" + Cache(), "HOME=" + Cache()};
}

std::vector<std::string> Leftovers(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_socket(ec) || (it->is_directory(ec) && name.rfind("kvmrun-", 0) == 0)) {
      found.push_back(it->path().string());
    }
  }
  return found;
}

}  // namespace kvmrun::testing

#include "launcher/runtime_dir.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include "io/safe_file.h"
#include "kvmrun/error.h"

namespace kvmrun {
namespace {

constexpr char kPrefix[] = "kvmrun-";

// Whether the process that made the directory may still run. A pid reused by another process
// keeps the directory, which is the safe mistake.
bool OwnerAlive(pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; }

}  // namespace

std::string DefaultRuntimeBase() {
  for (const char* var : {"XDG_RUNTIME_DIR", "TMPDIR"}) {
    if (const char* value = std::getenv(var); value != nullptr && *value == '/') return value;
  }
  return "/tmp";
}

RuntimeDir RuntimeDir::Create(const std::string& base) {
  // mkdtemp's name cannot be guessed, but in a directory others can write without the sticky
  // bit, they could still rename it away and put their own in its place.
  try {
    CheckBaseDir(base);
  } catch (const UsageError& e) {
    throw UsageError("cannot create a runtime directory in '" + base + "': " + e.what() +
                     " (set XDG_RUNTIME_DIR or TMPDIR to a directory of yours)");
  }
  std::string templ = base + "/" + kPrefix + std::to_string(getpid()) + "-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    throw UsageError("cannot create a runtime directory in '" + base +
                     "': " + std::strerror(errno) +
                     " (set XDG_RUNTIME_DIR or TMPDIR to a writable directory)");
  }
  chmod(templ.c_str(), 0700);
  return RuntimeDir(templ);
}

RuntimeDir RuntimeDir::Borrow(std::string path) { return RuntimeDir(std::move(path), false); }

RuntimeDir::~RuntimeDir() { Remove(); }

RuntimeDir::RuntimeDir(RuntimeDir&& other) noexcept
    : path_(std::exchange(other.path_, {})), owned_(other.owned_) {}

RuntimeDir& RuntimeDir::operator=(RuntimeDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, {});
    owned_ = other.owned_;
  }
  return *this;
}

void RuntimeDir::Remove() {
  if (path_.empty()) return;
  std::error_code ec;
  if (owned_) std::filesystem::remove_all(path_, ec);
  path_.clear();
}

int RemoveStaleRuntimeDirs(const std::string& base) {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(base, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kPrefix, 0) != 0) continue;
    // kvmrun-<pid>-XXXXXX
    const std::string rest = name.substr(sizeof(kPrefix) - 1);
    const auto dash = rest.find('-');
    if (dash == std::string::npos || dash == 0 || rest.size() - dash - 1 != 6) continue;
    char* end = nullptr;
    const long pid = std::strtol(rest.c_str(), &end, 10);
    if (end != rest.c_str() + dash || pid <= 0) continue;
    struct stat st {};
    if (lstat(entry.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid()) {
      continue;
    }
    if (OwnerAlive(static_cast<pid_t>(pid))) continue;
    std::error_code remove_ec;
    std::filesystem::remove_all(entry.path(), remove_ec);
    if (!remove_ec) ++removed;
  }
  return removed;
}

}  // namespace kvmrun

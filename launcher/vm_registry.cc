#include "kvmrun/vm_registry.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <utility>
#include <vector>

#include "io/errno_text.h"
#include "io/safe_file.h"
#include "kvmrun/error.h"
#include "kvmrun/qmp_codec.h"
#include "qmp/json_fields.h"

namespace kvmrun {
namespace {

namespace fs = std::filesystem;

constexpr char kLock[] = "lock";
constexpr char kInfo[] = "vm.json";

// `path` exists as a directory of this user's that nobody else can enter, or is made so
// (EnsureSafeDir refuses a link, someone else's directory, one others can write).
void EnsurePrivateDir(const std::string& path) { EnsureSafeDir(path, DirMode::kPrivate); }

constexpr std::uint64_t kMaxInfoBytes = 1 << 20;

// The user's home: $HOME when it is an absolute path, else the password database's.
std::string HomeDir() {
  if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/') return home;
  struct passwd entry {};
  struct passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (getpwuid_r(geteuid(), &entry, buffer.data(), buffer.size(), &found) == 0 &&
      found != nullptr && found->pw_dir != nullptr && found->pw_dir[0] == '/') {
    return found->pw_dir;
  }
  throw UsageError("$HOME",
                   "unset, and this user has no home directory to keep kvmrun's files in "
                   "(set HOME, or XDG_RUNTIME_DIR and XDG_DATA_HOME)");
}

// Removes everything in `dir` but `keep`.
void EmptyDir(const std::string& dir, const std::string& keep) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().filename() == keep) continue;
    fs::remove_all(entry.path(), ec);
  }
}

// Removes `dir` and the lock in it, while `lock_fd` holds that lock.
void RemoveLockedDir(const std::string& dir) {
  EmptyDir(dir, kLock);
  unlink((dir + "/" + kLock).c_str());
  rmdir(dir.c_str());
}

// Whether `fd` is still the lock file at `path` (an owner that was leaving may have removed
// the directory between our open and our flock).
bool SameFile(int fd, const std::string& path) {
  struct stat a {
  }, b{};
  return fstat(fd, &a) == 0 && stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

nlohmann::json ReadInfo(const std::string& dir) {
  try {
    const std::string text = ReadRegularFileBeneath(dir, kInfo, kMaxInfoBytes);
    nlohmann::json info = ParseBoundedJson(text);
    return info.is_object() ? info : nlohmann::json::object();
  } catch (const std::exception&) {
    return nlohmann::json::object();
  }
}

NamedVm ToNamedVm(const std::string& name, const std::string& dir) {
  NamedVm vm;
  vm.name = name;
  vm.dir = dir;
  vm.info = ReadInfo(dir);
  const auto number = [&](const char* key) -> long long {
    const auto it = vm.info.find(key);
    return it != vm.info.end() && it->is_number_integer() ? it->get<long long>() : 0;
  };
  vm.supervisor_pid = static_cast<pid_t>(number("supervisor_pid"));
  vm.qemu_pid = static_cast<pid_t>(number("qemu_pid"));
  vm.started = static_cast<std::time_t>(number("started_unix"));
  return vm;
}

// Whether a VM runs in `dir`: someone holds its lock. A stale directory is removed (this
// process takes the lock to do it) and reported as not running.
bool Alive(const std::string& dir) {
  const std::string lock = dir + "/" + kLock;
  const int fd = open(lock.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;  // being created right now, or not ours: leave it
  const bool held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  if (!held && SameFile(fd, lock)) RemoveLockedDir(dir);
  close(fd);
  return held;
}

}  // namespace

std::string DefaultNamedVmBase() {
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg == '/') {
    return std::string(xdg) + "/kvmrun";
  }
  // Never a fixed name in a shared temporary directory: another user could make it first and
  // block (or watch) this user's VMs. The login's runtime directory where one exists, else the
  // user's own cache directory, which nobody else can write.
  const std::string run_user = "/run/user/" + std::to_string(geteuid());
  struct stat st {};
  if (lstat(run_user.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
      (st.st_mode & 077) == 0) {
    return run_user + "/kvmrun";
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg == '/') {
    return std::string(xdg) + "/kvmrun/run";
  }
  return HomeDir() + "/.cache/kvmrun/run";
}

std::string DefaultStateDir(std::string_view name) {
  std::string base;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && *xdg == '/') {
    base = xdg;
  } else {
    base = HomeDir() + "/.local/share";
  }
  return base + "/kvmrun/vms/" + std::string(name);
}

void ValidateVmName(std::string_view name) {
  const bool ok =
      !name.empty() && name.size() <= 64 && name.front() != '.' && name.front() != '-' &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      });
  if (!ok) {
    throw UsageError("name", "invalid value '" + std::string(name) +
                                 "'; valid: 1 to 64 letters, digits, '.', '_' or '-', not "
                                 "starting with '.' or '-'");
  }
}

VmRegistration VmRegistration::Claim(const std::string& base, const std::string& name) {
  ValidateVmName(name);
  EnsurePrivateDir(base);
  const std::string dir = base + "/" + name;
  const std::string lock = dir + "/" + kLock;
  for (int attempt = 0; attempt < 5; ++attempt) {
    EnsurePrivateDir(dir);
    const int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) throw Error("cannot create '" + lock + "': " + Errno());
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      close(fd);
      if (err != EWOULDBLOCK) throw Error("cannot lock '" + lock + "': " + std::strerror(err));
      const NamedVm running = ToNamedVm(name, dir);
      throw UsageError("name", "a VM called '" + name + "' is already running" +
                                   (running.supervisor_pid > 0
                                        ? " (pid " + std::to_string(running.supervisor_pid) + ")"
                                        : "") +
                                   "; stop it first, or choose another name");
    }
    if (!SameFile(fd, lock)) {  // its last owner removed it meanwhile: start again
      close(fd);
      continue;
    }
    EmptyDir(dir, kLock);  // what a dead owner left
    VmRegistration registration;
    registration.name_ = name;
    registration.dir_ = dir;
    registration.lock_fd_ = fd;
    return registration;
  }
  throw Error("cannot claim the name '" + name + "' in " + base + ": it keeps changing hands");
}

VmRegistration::~VmRegistration() { Drop(); }

void VmRegistration::Drop() {
  if (lock_fd_ < 0) return;
  RemoveLockedDir(dir_);
  close(lock_fd_);
  lock_fd_ = -1;
}

VmRegistration::VmRegistration(VmRegistration&& other) noexcept
    : name_(std::move(other.name_)),
      dir_(std::move(other.dir_)),
      lock_fd_(std::exchange(other.lock_fd_, -1)) {}

VmRegistration& VmRegistration::operator=(VmRegistration&& other) noexcept {
  if (this != &other) {
    Drop();
    name_ = std::move(other.name_);
    dir_ = std::move(other.dir_);
    lock_fd_ = std::exchange(other.lock_fd_, -1);
  }
  return *this;
}

void VmRegistration::Publish(nlohmann::json info) const {
  info["name"] = name_;
  WriteFileAtomically(dir_, kInfo, DumpJson(info, 2) + "\n", 0600);
}

void VmRegistration::Release() {
  if (lock_fd_ >= 0) close(lock_fd_);
  lock_fd_ = -1;
}

std::vector<NamedVm> ListNamedVms(const std::string& base) {
  std::vector<NamedVm> vms;
  struct stat st {};
  if (lstat(base.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid()) return vms;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(base, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory(ec) || entry.is_symlink(ec)) continue;
    if (Alive(entry.path().string())) vms.push_back(ToNamedVm(name, entry.path().string()));
  }
  std::sort(vms.begin(), vms.end(),
            [](const NamedVm& a, const NamedVm& b) { return a.name < b.name; });
  return vms;
}

std::optional<NamedVm> FindNamedVm(const std::string& name, const std::string& base) {
  ValidateVmName(name);
  const std::string dir = base + "/" + name;
  struct stat st {};
  if (lstat(base.c_str(), &st) != 0 || st.st_uid != getuid()) return std::nullopt;
  if (!Alive(dir)) return std::nullopt;
  return ToNamedVm(name, dir);
}

namespace {

constexpr char kLastRunFile[] = "last-run.json";
constexpr char kLastRunLog[] = "last-run.log";
constexpr std::size_t kMaxLastRunLog = 256 << 10;

LastRun LastRunFromJson(const nlohmann::json& json) {
  const JsonFields f(json, kLastRunFile);
  LastRun run;
  run.name = f.String("name");
  run.supervisor_pid = static_cast<pid_t>(f.IntOr("supervisor_pid", 0, 0, INT32_MAX));
  run.started_unix = f.IntOr("started_unix", 0);
  run.ended_unix = f.Int("ended_unix");
  run.stopped_by = f.StringOr("stopped_by", "");
  run.step = f.StringOr("step", "");
  run.forced = f.BoolOr("forced", false);
  run.shutdown_reason = f.StringOr("shutdown_reason", "");
  run.qemu_exit = f.StringOr("qemu_exit", "");
  run.exit_code = static_cast<int>(f.Int("exit_code", 0, 255));
  run.summary = f.StringOr("summary", "");
  return run;
}

}  // namespace

nlohmann::json LastRunToJson(const LastRun& run) {
  return {{"name", run.name},
          {"supervisor_pid", run.supervisor_pid},
          {"started_unix", run.started_unix},
          {"ended_unix", run.ended_unix},
          {"stopped_by", run.stopped_by},
          {"step", run.step},
          {"forced", run.forced},
          {"shutdown_reason", run.shutdown_reason},
          {"qemu_exit", run.qemu_exit},
          {"exit_code", run.exit_code},
          {"summary", run.summary}};
}

void RecordLastRun(const LastRun& run, std::string_view log) {
  ValidateVmName(run.name);
  const std::string dir = DefaultStateDir(run.name);
  EnsureSafeDir(dir, DirMode::kPrivate);
  if (log.size() > kMaxLastRunLog) log = log.substr(log.size() - kMaxLastRunLog);
  WriteFileAtomically(dir, kLastRunLog, log, 0600);
  WriteFileAtomically(dir, kLastRunFile, DumpJson(LastRunToJson(run), 2) + "\n", 0600);
}

std::optional<LastRun> ReadLastRun(const std::string& name) {
  ValidateVmName(name);
  try {
    const std::string text =
        ReadRegularFileBeneath(DefaultStateDir(name), kLastRunFile, kMaxInfoBytes);
    return LastRunFromJson(ParseBoundedJson(text));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::vector<LastRun> ListLastRuns() {
  std::vector<LastRun> runs;
  std::string base;
  try {
    base = fs::path(DefaultStateDir("x")).parent_path().string();
  } catch (const Error&) {
    return runs;
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(base, ec)) {
    const std::string name = entry.path().filename().string();
    try {
      ValidateVmName(name);
    } catch (const UsageError&) {
      continue;
    }
    if (auto run = ReadLastRun(name)) runs.push_back(std::move(*run));
  }
  std::sort(runs.begin(), runs.end(),
            [](const LastRun& a, const LastRun& b) { return a.name < b.name; });
  return runs;
}

StopResult StopNamedVm(const std::string& name, std::chrono::milliseconds timeout,
                       const std::string& base) {
  const std::optional<NamedVm> found = FindNamedVm(name, base);
  if (!found) {
    throw UsageError("name", "no running VM called '" + name + "'");
  }
  if (found->supervisor_pid <= 0) {
    throw Error("VM '" + name + "' is starting and has no supervisor pid yet; try again");
  }
  const auto start = std::chrono::steady_clock::now();
  if (kill(found->supervisor_pid, SIGTERM) != 0 && errno != ESRCH) {
    throw Error("cannot signal the supervisor of VM '" + name + "' (pid " +
                std::to_string(found->supervisor_pid) + "): " + Errno());
  }
  while (FindNamedVm(name, base)) {
    if (std::chrono::steady_clock::now() - start > timeout) {
      throw Error("VM '" + name + "' is still running after " +
                  std::to_string(timeout.count() / 1000) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  StopResult result;
  result.took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  // The supervisor writes its record before it lets go of the name; one from another run (a
  // supervisor killed before it could write) is not this one's.
  if (auto ended = ReadLastRun(name); ended && ended->supervisor_pid == found->supervisor_pid) {
    result.ended = std::move(ended);
  }
  return result;
}

}  // namespace kvmrun

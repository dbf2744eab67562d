#include "io/safe_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "io/errno_text.h"

namespace kvmrun {
namespace {

namespace fs = std::filesystem;

std::string KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISREG(mode)) return "a regular file";
  return "not a regular file";
}

[[noreturn]] void NotRegular(const std::string& path, mode_t mode) {
  throw UnsafePath("'" + path + "' is " + KindOf(mode) + ", not a regular file");
}

[[noreturn]] void CannotOpen(const std::string& path, int err) {
  if (err == ELOOP) {
    throw UnsafePath("'" + path + "' is a symbolic link, which kvmrun does not follow here");
  }
  throw CannotOpenFile("cannot open '" + path + "': " + std::strerror(err), err);
}

// fd is open on a regular file that is the same as `before` (what stat said of the name).
void CheckOpened(int fd, const struct stat& before, const std::string& path) {
  struct stat st {};
  if (fstat(fd, &st) != 0) throw UsageError("cannot read '" + path + "': " + Errno());
  if (!S_ISREG(st.st_mode)) NotRegular(path, st.st_mode);
  if (st.st_dev != before.st_dev || st.st_ino != before.st_ino) {
    throw UnsafePath("'" + path + "' changed while kvmrun opened it");
  }
  // Reads block again (a regular file never blocks anyway; the flag only guarded the open).
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
}

std::vector<std::string> Components(std::string_view relative) {
  std::vector<std::string> parts;
  if (relative.empty() || relative.front() == '/') return {};
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = relative.find('/', start);
    parts.emplace_back(
        relative.substr(start, slash == relative.npos ? relative.npos : slash - start));
    if (slash == relative.npos) break;
    start = slash + 1;
  }
  for (const std::string& part : parts) {
    if (part.empty() || part == "." || part == "..") return {};
  }
  return parts;
}

uid_t Me() { return geteuid(); }

std::string Octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Directories above `path`: each this user's or root's, and writable by others only when
// sticky (then nobody but its owner can rename what is in it).
void CheckAncestors(const fs::path& path) {
  for (fs::path dir = path.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    struct stat st {};
    if (stat(dir.c_str(), &st) != 0)
      throw UnsafePath("cannot use '" + dir.string() + "': " + Errno());
    if (st.st_uid != 0 && st.st_uid != Me()) {
      throw UnsafePath("'" + path.string() + "' is inside '" + dir.string() +
                       "', which belongs to uid " + std::to_string(st.st_uid) +
                       ": its owner could replace what kvmrun puts there");
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
      throw UnsafePath("'" + path.string() + "' is inside '" + dir.string() + "' (mode " +
                       Octal(st.st_mode) +
                       "), which others can write to: they could replace what kvmrun puts there");
    }
    if (dir == dir.root_path()) break;
  }
}

}  // namespace

UniqueFd OpenRegularFile(const std::string& path, FinalLink link) {
  struct stat before {};
  const int stat_result =
      link == FinalLink::kRefuse ? lstat(path.c_str(), &before) : stat(path.c_str(), &before);
  if (stat_result != 0) CannotOpen(path, errno);
  if (S_ISLNK(before.st_mode)) CannotOpen(path, ELOOP);
  if (!S_ISREG(before.st_mode)) NotRegular(path, before.st_mode);
  const int flags =
      O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (link == FinalLink::kRefuse ? O_NOFOLLOW : 0);
  UniqueFd fd(open(path.c_str(), flags));
  if (fd.get() < 0) CannotOpen(path, errno);
  CheckOpened(fd.get(), before, path);
  return fd;
}

std::string ReadBounded(int fd, std::uint64_t max_bytes, const std::string& what) {
  std::string out;
  struct stat st {};
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
      throw UnsafePath("'" + what + "' is " + std::to_string(st.st_size) +
                       " bytes, more than the " + std::to_string(max_bytes) +
                       " kvmrun reads from it");
    }
    out.reserve(static_cast<std::size_t>(st.st_size));
  }
  char buffer[65536];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw UsageError("cannot read '" + what + "': " + Errno());
    if (n == 0) return out;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      throw UnsafePath("'" + what + "' is more than the " + std::to_string(max_bytes) +
                       " bytes kvmrun reads from it");
    }
    out.append(buffer, static_cast<std::size_t>(n));
  }
}

std::string ReadRegularFile(const std::string& path, std::uint64_t max_bytes, FinalLink link) {
  const UniqueFd fd = OpenRegularFile(path, link);
  return ReadBounded(fd.get(), max_bytes, path);
}

UniqueFd OpenRegularFileBeneath(const std::string& dir, std::string_view relative) {
  const std::string shown = dir + "/" + std::string(relative);
  const std::vector<std::string> parts = Components(relative);
  if (parts.empty()) {
    throw UnsafePath("'" + std::string(relative) + "' is not a name inside '" + dir +
                     "' (absolute, empty, or with '.' or '..')");
  }
  UniqueFd current(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (current.get() < 0) throw UsageError("cannot open '" + dir + "': " + Errno());
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    UniqueFd next(
        openat(current.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (next.get() < 0) {
      if (errno == ELOOP || errno == ENOTDIR) {
        throw UnsafePath("'" + shown + "': '" + parts[i] +
                         "' is a symbolic link or not a directory, which kvmrun does not follow");
      }
      throw UsageError("cannot open '" + shown + "': " + Errno());
    }
    current = std::move(next);
  }
  struct stat before {};
  if (fstatat(current.get(), parts.back().c_str(), &before, AT_SYMLINK_NOFOLLOW) != 0) {
    CannotOpen(shown, errno);
  }
  if (S_ISLNK(before.st_mode)) CannotOpen(shown, ELOOP);
  if (!S_ISREG(before.st_mode)) NotRegular(shown, before.st_mode);
  UniqueFd fd(openat(current.get(), parts.back().c_str(),
                     O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (fd.get() < 0) CannotOpen(shown, errno);
  CheckOpened(fd.get(), before, shown);
  return fd;
}

std::string ReadRegularFileBeneath(const std::string& dir, std::string_view relative,
                                   std::uint64_t max_bytes) {
  const UniqueFd fd = OpenRegularFileBeneath(dir, relative);
  return ReadBounded(fd.get(), max_bytes, dir + "/" + std::string(relative));
}

void EnsureSafeDir(const std::string& path, DirMode mode) {
  if (path.empty()) throw UnsafePath("an empty directory name");
  fs::path absolute = fs::absolute(fs::path(path)).lexically_normal();
  if (!absolute.has_filename() && absolute != absolute.root_path())
    absolute = absolute.parent_path();
  // Make what is missing, top down, private: nothing is ever made writable by others.
  fs::path made;
  for (const fs::path& part : absolute) {
    made /= part;
    if (made == made.root_path()) continue;
    if (mkdir(made.c_str(), 0700) != 0 && errno != EEXIST) {
      throw UnsafePath("cannot create '" + made.string() + "': " + Errno());
    }
  }
  const std::string shown = absolute.string();
  struct stat st {};
  if (lstat(shown.c_str(), &st) != 0) throw UnsafePath("cannot use '" + shown + "': " + Errno());
  if (S_ISLNK(st.st_mode)) {
    throw UnsafePath("'" + shown +
                     "' is a symbolic link; kvmrun writes only into a real "
                     "directory (name the one it points to)");
  }
  if (!S_ISDIR(st.st_mode))
    throw UnsafePath("'" + shown + "' is " + KindOf(st.st_mode) + ", not a directory");
  if (st.st_uid != Me()) {
    throw UnsafePath("'" + shown + "' belongs to uid " + std::to_string(st.st_uid) +
                     ", not to this user (uid " + std::to_string(Me()) +
                     "): kvmrun writes only into its own directories");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    throw UnsafePath("'" + shown + "' (mode " + Octal(st.st_mode) +
                     ") can be written by others, who could plant links there; "
                     "chmod go-w it or choose another directory");
  }
  CheckAncestors(absolute);
  if (mode == DirMode::kPrivate && (st.st_mode & 077) != 0 && chmod(shown.c_str(), 0700) != 0) {
    throw UnsafePath("cannot make '" + shown + "' private (0700): " + Errno());
  }
}

void CheckBaseDir(const std::string& dir) {
  fs::path absolute = fs::absolute(fs::path(dir)).lexically_normal();
  if (!absolute.has_filename() && absolute != absolute.root_path())
    absolute = absolute.parent_path();
  struct stat st {};
  if (stat(absolute.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw UnsafePath("'" + absolute.string() + "' is not a directory");
  }
  CheckAncestors(absolute / "kvmrun");
}

UniqueFd CreateFileExclusive(const std::string& path, mode_t mode) {
  UniqueFd fd(
      open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode));
  if (fd.get() < 0) throw Error("cannot create '" + path + "': " + Errno());
  return fd;
}

void WriteAllOrThrow(int fd, std::string_view bytes, const std::string& what) {
  while (!bytes.empty()) {
    const ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error("cannot write '" + what + "': " + Errno());
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

namespace {

// Creates dir/name.partial afresh, lets `fill` write it, renames it over dir/name.
template <typename Fill>
void ReplaceAtomically(const std::string& dir, const std::string& name, mode_t mode, Fill fill) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    throw Error("'" + name + "' is not a file name");
  }
  UniqueFd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0) throw Error("cannot open '" + dir + "': " + Errno());
  const std::string partial = name + ".partial";
  const std::string shown = dir + "/" + partial;
  if (unlinkat(dir_fd.get(), partial.c_str(), 0) != 0 && errno != ENOENT) {
    throw Error("cannot remove the stale '" + shown + "': " + Errno());
  }
  UniqueFd fd(openat(dir_fd.get(), partial.c_str(),
                     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode));
  if (fd.get() < 0) throw Error("cannot create '" + shown + "': " + Errno());
  try {
    fill(fd.get(), shown);
    if (fchmod(fd.get(), mode) != 0)
      throw Error("cannot set the mode of '" + shown + "': " + Errno());
    fd.Reset();
    if (renameat(dir_fd.get(), partial.c_str(), dir_fd.get(), name.c_str()) != 0) {
      throw Error("cannot rename '" + shown + "' to '" + name + "': " + Errno());
    }
  } catch (...) {
    unlinkat(dir_fd.get(), partial.c_str(), 0);
    throw;
  }
}

}  // namespace

void WriteFileAtomically(const std::string& dir, const std::string& name, std::string_view bytes,
                         mode_t mode) {
  ReplaceAtomically(dir, name, mode,
                    [&](int fd, const std::string& shown) { WriteAllOrThrow(fd, bytes, shown); });
}

void CopyFileAtomically(const std::string& source, const std::string& dir, const std::string& name,
                        mode_t mode) {
  const UniqueFd in = OpenRegularFile(source, FinalLink::kFollow);
  ReplaceAtomically(dir, name, mode, [&](int fd, const std::string& shown) {
    char buffer[65536];
    while (true) {
      const ssize_t n = read(in.get(), buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw Error("cannot read '" + source + "': " + Errno());
      if (n == 0) return;
      WriteAllOrThrow(fd, std::string_view(buffer, static_cast<std::size_t>(n)), shown);
    }
  });
}

}  // namespace kvmrun

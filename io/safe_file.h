// Files and directories whose names come from outside kvmrun: a user's option, a shard's
// results.json, a state directory another user might have made first. The rules, each closing a
// class of attack (docs/security.md, "Files and directories"):
// - A file kvmrun reads is checked to be a regular file before anything can block on it (a FIFO,
//   a tty, a device): opened with O_NONBLOCK, then fstat. Its size is bounded before it is read.
// - A file named by another machine's data is opened beneath its directory only: no absolute
//   name, no "..", no symbolic link at any step.
// - A directory kvmrun writes into belongs to this user, is writable by nobody else, and so is
//   every directory above it (unless that one is sticky, as /tmp is); private ones are 0700.
// - A file kvmrun writes is created with O_EXCL|O_NOFOLLOW (a name planted there is never
//   followed) and renamed into place, so a reader never sees half of it.
#ifndef KVMRUN_IO_SAFE_FILE_H_
#define KVMRUN_IO_SAFE_FILE_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "io/unique_fd.h"
#include "kvmrun/error.h"

namespace kvmrun {

// A file or directory that is not what kvmrun may use: not a regular file, a link where none
// may be, too large, outside its directory, someone else's, writable by others. Bad input: the
// CLI exits 2. what() names the path and the rule.
class UnsafePath : public UsageError {
 public:
  using UsageError::UsageError;
};

// A file that could not be opened at all (missing, no permission): errno in error_number().
class CannotOpenFile : public UsageError {
 public:
  CannotOpenFile(const std::string& message, int error_number)
      : UsageError(message), error_number_(error_number) {}
  int error_number() const { return error_number_; }

 private:
  int error_number_;
};

enum class FinalLink {
  kFollow,  // a name the user typed may be a link to the real file (a snapshot, a VM file)
  kRefuse,  // a name inside a directory someone else fills may not
};

// Opens `path` read-only when it is a regular file; never blocks on a FIFO or device. Throws
// UnsafePath (not regular, a refused link) or CannotOpenFile (missing, unreadable).
UniqueFd OpenRegularFile(const std::string& path, FinalLink link = FinalLink::kFollow);

// The whole content of the regular file `path`, at most `max_bytes` (else UnsafePath).
std::string ReadRegularFile(const std::string& path, std::uint64_t max_bytes,
                            FinalLink link = FinalLink::kFollow);

// Reads what is left of an open file, at most `max_bytes`; throws UnsafePath naming `what`
// when there is more.
std::string ReadBounded(int fd, std::uint64_t max_bytes, const std::string& what);

// Opens `relative` (a/b/c) beneath the directory `dir` without leaving it: refuses an absolute
// name, an empty or ".." component, a link at any step, and anything but a regular file at the
// end.
UniqueFd OpenRegularFileBeneath(const std::string& dir, std::string_view relative);
std::string ReadRegularFileBeneath(const std::string& dir, std::string_view relative,
                                   std::uint64_t max_bytes);

enum class DirMode {
  kPrivate,  // 0700: a VM's state (UEFI variables, TPM), runtime sockets, the named-VM registry
  kShared,   // readable by others is fine (results a CI system collects), writable only by us
};

// Makes `path` (and missing parents, 0700) or checks the one there: a directory, not a link,
// owned by this user, writable by nobody else, under directories that are this user's or root's
// and writable by nobody else unless sticky. kPrivate tightens a directory of ours to 0700.
// Throws UnsafePath naming the path and what is wrong with it.
void EnsureSafeDir(const std::string& path, DirMode mode);

// Checks a directory kvmrun makes its own unpredictably named directories in (mkdtemp in
// $TMPDIR): this user's or root's, writable by others only when sticky, and so every directory
// above it; otherwise another user could rename what kvmrun made there. Throws UnsafePath.
void CheckBaseDir(const std::string& dir);

// Writes `bytes` to dir/name through dir/name.partial, created with O_EXCL|O_NOFOLLOW and
// mode `mode`, then renamed over dir/name. A stale partial (ours, from a killed run) is
// removed first; a link at either name is replaced, never followed. Throws Error.
void WriteFileAtomically(const std::string& dir, const std::string& name, std::string_view bytes,
                         mode_t mode);

// Copies the regular file `source` (links followed: a system file such as OVMF's variable
// template) to dir/name the same way.
void CopyFileAtomically(const std::string& source, const std::string& dir, const std::string& name,
                        mode_t mode);

// Creates `path` for writing, exclusively, never through a link. Throws Error.
UniqueFd CreateFileExclusive(const std::string& path, mode_t mode);

// Writes all of `bytes` to `fd` (retrying short writes and EINTR). Throws Error naming `what`.
void WriteAllOrThrow(int fd, std::string_view bytes, const std::string& what);

}  // namespace kvmrun

#endif  // KVMRUN_IO_SAFE_FILE_H_

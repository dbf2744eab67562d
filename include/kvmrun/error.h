// Errors thrown by the kvmrun library.
//
// The library never prints and never exits: every failure is an exception derived from
// kvmrun::Error whose what() is one line a person can act on. The CLI maps them to exit codes:
//   UsageError -> 2 (bad usage or input), any other Error -> 1 (VM, QEMU or guest failure).
// A clock verification mismatch is not an exception; it is a VerificationReport (exit 3).
#ifndef KVMRUN_ERROR_H_
#define KVMRUN_ERROR_H_

#include <stdexcept>
#include <string>
#include <vector>

namespace kvmrun {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The caller asked for something invalid: an unknown name, a malformed value, a missing file.
// Thrown before anything is started, so nothing is left to clean up.
//
// Most carry the field that was wrong, in the library's own terms (a VmSpec member such as
// "memory_mib", an option of a call such as "tcg_factor"): what() reads "<field>: <detail>".
// The library never names a command-line flag; the CLI maps the field to its own.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
  UsageError(std::string field, const std::string& detail)
      : Error(field + ": " + detail), field_(std::move(field)), detail_(detail) {}

  const std::string& field() const { return field_; }    // empty when not about one field
  const std::string& detail() const { return detail_; }  // what() without the field

 private:
  std::string field_;
  std::string detail_;
};

// QEMU failed to start, crashed, or the guest failed. Carries what a person needs to see why.
class VmError : public Error {
 public:
  VmError(const std::string& message, std::vector<std::string> argv = {},
          std::string stderr_tail = {}, std::string console_tail = {})
      : Error(message),
        argv_(std::move(argv)),
        stderr_tail_(std::move(stderr_tail)),
        console_tail_(std::move(console_tail)) {}

  // The QEMU command line that was run (empty when QEMU was never started).
  const std::vector<std::string>& argv() const { return argv_; }
  // The last lines QEMU wrote to stderr.
  const std::string& stderr_tail() const { return stderr_tail_; }
  // The last lines of the guest's serial console.
  const std::string& console_tail() const { return console_tail_; }

 private:
  std::vector<std::string> argv_;
  std::string stderr_tail_;
  std::string console_tail_;
};

}  // namespace kvmrun

#endif  // KVMRUN_ERROR_H_

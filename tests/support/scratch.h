// A scratch area for tests that run kvmrun for real: files to point it at, and the runtime and
// cache directories it is told to use, so that whatever it leaves behind can be found.
#ifndef KVMRUN_TESTS_SUPPORT_SCRATCH_H_
#define KVMRUN_TESTS_SUPPORT_SCRATCH_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "tests/support/qemu_process.h"

namespace kvmrun::testing {

class Scratch {
 public:
  Scratch();
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
  std::string Run() const { return dir_.path() + "/run"; }
  std::string Cache() const { return dir_.path() + "/cache"; }
  // Writes `content` to the file `name` with `mode`; returns its path.
  std::string File(const std::string& name, const std::string& content, mode_t mode = 0644) const;
  std::string Dir(const std::string& name) const;
  // XDG_RUNTIME_DIR, XDG_CACHE_HOME and HOME pointing into the scratch area.
  std::vector<std::string> Env() const;

 private:
  TempDir dir_;
};

// Everything under `dir` that is a socket or a kvmrun runtime directory.
std::vector<std::string> Leftovers(const std::string& dir);

}  // namespace kvmrun::testing

#endif  // KVMRUN_TESTS_SUPPORT_SCRATCH_H_

// A VM's private runtime directory: <base>/kvmrun-<pid>-XXXXXX, mode 0700, created with
// mkdtemp (no predictable name, also in a world-writable /tmp) and removed with everything in
// it when the VM is done. The owner's pid in the name lets a later run remove the directories
// of a kvmrun that was killed (RemoveStaleRuntimeDirs).
#ifndef KVMRUN_LAUNCHER_RUNTIME_DIR_H_
#define KVMRUN_LAUNCHER_RUNTIME_DIR_H_

#include <string>

namespace kvmrun {

// $XDG_RUNTIME_DIR when set, else $TMPDIR, else /tmp.
std::string DefaultRuntimeBase();

class RuntimeDir {
 public:
  // Throws UsageError naming the base directory when the directory cannot be created.
  static RuntimeDir Create(const std::string& base = DefaultRuntimeBase());
  // An existing directory someone else owns (a named VM's): used, never removed.
  static RuntimeDir Borrow(std::string path);

  RuntimeDir() = default;
  ~RuntimeDir();
  RuntimeDir(RuntimeDir&& other) noexcept;
  RuntimeDir& operator=(RuntimeDir&& other) noexcept;
  RuntimeDir(const RuntimeDir&) = delete;
  RuntimeDir& operator=(const RuntimeDir&) = delete;

  const std::string& path() const { return path_; }
  // Removes the directory now (idempotent).
  void Remove();

 private:
  explicit RuntimeDir(std::string path, bool owned = true)
      : path_(std::move(path)), owned_(owned) {}
  std::string path_;
  bool owned_ = true;
};

// Removes the runtime directories under `base` whose owning kvmrun process is gone: only
// directories named kvmrun-<pid>-XXXXXX, owned by this user, whose pid no longer runs a
// kvmrun. Returns how many it removed.
int RemoveStaleRuntimeDirs(const std::string& base = DefaultRuntimeBase());

}  // namespace kvmrun

#endif  // KVMRUN_LAUNCHER_RUNTIME_DIR_H_

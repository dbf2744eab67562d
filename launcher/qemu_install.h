// Where a QEMU binary lives decides what else it needs to run: a QEMU unpacked outside the
// system prefix (<prefix>/bin/qemu-system-x86_64, e.g. by scripts/fetch-qemu) must be pointed
// at its own firmware and modules, or it picks up the system QEMU's, which belong to another
// version.
#ifndef KVMRUN_LAUNCHER_QEMU_INSTALL_H_
#define KVMRUN_LAUNCHER_QEMU_INSTALL_H_

#include <string>
#include <vector>

#include "kvmrun/process.h"

namespace kvmrun {

// The -L directories `qemu` needs: none for a binary in /usr or /usr/local (its compiled-in
// data directory is right); for one unpacked elsewhere, its own <prefix>/share/qemu and
// <prefix>/share/seabios first, then the system's, so ROMs of the right version win and
// SeaBIOS comes from wherever it is installed.
std::vector<std::string> FirmwareDirsFor(const std::string& qemu);

// The environment `qemu` needs: for an unpacked binary, QEMU_MODULE_DIR naming its own
// module directory (QEMU 10 aborts on a module built for another version).
std::vector<std::string> EnvironmentFor(const std::string& qemu);

// The first executable file `name` in `first_dirs`, then in $PATH's directories (an empty
// entry is the current directory; /usr/local/bin:/usr/bin:/bin without PATH); "" when none.
std::string FindExecutable(const std::string& name,
                           const std::vector<std::string>& first_dirs = {});

// A SpawnRequest for `qemu` with `args` (argv[0] added) and EnvironmentFor(qemu).
SpawnRequest QemuSpawnRequest(const std::string& qemu, const std::vector<std::string>& args);

}  // namespace kvmrun

#endif  // KVMRUN_LAUNCHER_QEMU_INSTALL_H_

// Firmware search paths for a QEMU that does not live where it was built to live.
#ifndef KVMRUN_LAUNCHER_FIRMWARE_H_
#define KVMRUN_LAUNCHER_FIRMWARE_H_

#include <string>
#include <vector>

namespace kvmrun {

// The -L directories `qemu` needs: none for a binary in /usr or /usr/local (its compiled-in
// data directory is right); for one unpacked elsewhere (<prefix>/bin/qemu-system-x86_64), its
// own <prefix>/share/qemu and <prefix>/share/seabios first, then the system's, so ROMs of the
// right version win and SeaBIOS comes from wherever it is installed.
std::vector<std::string> FirmwareDirsFor(const std::string& qemu);

}  // namespace kvmrun

#endif  // KVMRUN_LAUNCHER_FIRMWARE_H_

// What a user asks for when they start a VM: the guest OS (and so its clock policy), the
// hardware, the boot payload, and how kvmrun should run it. Plain data; BuildQemuArgv()
// (qemu_command.h) turns it into a QEMU command line and ValidateVmSpec() checks it first.
#ifndef KVMRUN_VM_SPEC_H_
#define KVMRUN_VM_SPEC_H_

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/clock_policy.h"

namespace kvmrun {

// Which accelerator to use. kAuto takes KVM when it is usable, else TCG, and says why.
enum class AccelRequest { kAuto, kKvm, kTcg };
inline constexpr std::array kAllAccelRequests{AccelRequest::kAuto, AccelRequest::kKvm,
                                              AccelRequest::kTcg};
std::string_view ToString(AccelRequest request);
AccelRequest ParseAccelRequest(std::string_view text, std::string_view field = "accel");

// What happens to the clock verification result before the guest runs.
enum class VerifyMode { kOff, kWarn, kEnforce };
inline constexpr std::array kAllVerifyModes{VerifyMode::kOff, VerifyMode::kWarn,
                                            VerifyMode::kEnforce};
std::string_view ToString(VerifyMode mode);
VerifyMode ParseVerifyMode(std::string_view text, std::string_view field = "verify");

enum class DiskFormat { kRaw, kQcow2 };
inline constexpr std::array kAllDiskFormats{DiskFormat::kRaw, DiskFormat::kQcow2};
std::string_view ToString(DiskFormat format);

// The controller a disk or cdrom hangs off. The guest needs a driver for it: virtio is the
// fastest but Windows' installer has no driver for it (virtio-win has); sata (AHCI) is read
// by every Windows since Vista and by Linux; ide by everything, slowly; scsi is virtio-scsi.
enum class DiskBus { kVirtio, kSata, kIde, kScsi };
inline constexpr std::array kAllDiskBuses{DiskBus::kVirtio, DiskBus::kSata, DiskBus::kIde,
                                          DiskBus::kScsi};
std::string_view ToString(DiskBus bus);

// What the VM boots through: SeaBIOS, or OVMF (UEFI) from Debian's ovmf package, with Secure
// Boot and Microsoft's keys enrolled for uefi-secure (firmware.h).
enum class Firmware { kBios, kUefi, kUefiSecure };
inline constexpr std::array kAllFirmwares{Firmware::kBios, Firmware::kUefi, Firmware::kUefiSecure};
std::string_view ToString(Firmware firmware);
Firmware ParseFirmware(std::string_view text, std::string_view field = "firmware");

// The network card the guest sees on its user-mode (SLIRP) network.
enum class NicModel { kVirtio, kE1000e, kE1000, kRtl8139 };
inline constexpr std::array kAllNicModels{NicModel::kVirtio, NicModel::kE1000e, NicModel::kE1000,
                                          NicModel::kRtl8139};
std::string_view ToString(NicModel model);
NicModel ParseNicModel(std::string_view text, std::string_view field = "nic_model");

// How a person sees the guest's screen. none: no display device at all (the serial console
// is the only way in). vnc: a VNC server on localhost (first free port from 5900), on a Unix
// socket, or at an address the user gives. spice: a SPICE server on a Unix socket. gtk: a
// window on this desktop (QEMU's qemu-system-gui package).
enum class DisplayKind { kNone, kVnc, kSpice, kGtk };
inline constexpr std::array kAllDisplayKinds{DisplayKind::kNone, DisplayKind::kVnc,
                                             DisplayKind::kSpice, DisplayKind::kGtk};
std::string_view ToString(DisplayKind kind);

struct DisplaySpec {
  DisplayKind kind = DisplayKind::kNone;
  // vnc only: "" (127.0.0.1, the first free port from 5900), "unix" (a socket in the VM's
  // runtime directory), or "ADDR:PORT" with PORT 5900 to 65535.
  std::string listen;
};

// Parses "none", "vnc", "vnc=unix", "vnc=ADDR:PORT", "spice", "gtk". UsageError names `field`.
DisplaySpec ParseDisplayArgument(std::string_view text, std::string_view field = "display");

// A host port forwarded to the guest over user-mode networking (QEMU's hostfwd).
struct PortForward {
  std::string protocol = "tcp";            // tcp or udp
  std::string host_address = "127.0.0.1";  // where the host listens: loopback unless told
  int host_port = 0;
  int guest_port = 0;
};

// Parses "[tcp:|udp:][ADDR:]HOSTPORT:GUESTPORT" ("tcp:2222:22", "8080:80",
// "udp:0.0.0.0:5353:53"). UsageError names `field`.
PortForward ParseForwardArgument(std::string_view text, std::string_view field = "forwards");
std::string ToString(const PortForward& forward);  // "tcp:127.0.0.1:2222-:22", QEMU's hostfwd
bool IsLoopbackAddress(std::string_view address);

// What the firmware tries first when the VM has both disks and cdroms (an installation).
// kAuto: the first cdrom when every writable disk is blank (a new disk for an installer), else
// the disks (HardwareProfile::boot_from, ResolveBootOrder).
enum class BootFrom { kAuto, kDisk, kCdrom };
inline constexpr std::array kAllBootFroms{BootFrom::kAuto, BootFrom::kDisk, BootFrom::kCdrom};
std::string_view ToString(BootFrom from);

// A disk image. Its format is never taken from the file's content: a guest writes its own
// disk, and a raw disk whose first bytes the guest made a qcow2 header would be reopened as
// qcow2 with a backing file of the guest's choosing, i.e. any host file the user can read
// (libvirt refuses to probe for the same reason). The format is what the user says, else
// what the file name says (.qcow2), else raw.
struct DiskSpec {
  std::string path;
  DiskFormat format = DiskFormat::kRaw;
  bool format_given = false;  // the user named the format (else it came from the file name)
  bool read_only = false;
  bool snapshot = false;         // writes go to a temporary overlay and are discarded
  std::optional<DiskBus> bus{};  // empty: the guest OS's default (hardware_profile.h)
};

// A host directory shared with the guest over virtio-9p. The guest mounts it by its tag:
//   mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt/TAG
// (kvmrun's test guest does so by itself). Files the guest creates belong to the user that
// runs QEMU. virtio-fs would be faster, but its daemon (virtiofsd) is not in Debian 12.
struct ShareSpec {
  std::string host_dir;
  std::string tag;  // 1 to 31 of letters, digits, '.', '_', '-'
  bool read_only = false;
};

struct VmSpec {
  std::string name = "kvmrun";  // shown by QEMU (-name) and in process listings
  GuestOs os = GuestOs::kLinux;
  ClockOverrides clock_overrides;

  std::string qemu;  // path of qemu-system-x86_64; empty: $KVMRUN_QEMU, then PATH
  AccelRequest accel = AccelRequest::kAuto;
  std::string machine;    // e.g. "q35"; empty: QEMU's default machine
  std::string cpu_model;  // empty: "host" under KVM, "max" under TCG
  std::uint64_t memory_mib = 512;
  int cpus = 1;

  std::string kernel;  // direct kernel boot, with initrd and append
  std::string initrd;
  std::string append;
  std::vector<DiskSpec> disks;
  std::vector<std::string> cdroms;  // ISO images, read-only, on the OS's cdrom bus
  BootFrom boot_from = BootFrom::kAuto;
  bool network = false;                 // a user-mode (SLIRP) NIC; off by default
  std::vector<PortForward> forwards;    // host ports into the guest; they imply `network`
  std::optional<NicModel> nic_model{};  // empty: the guest OS's default

  // Firmware and TPM; empty: the guest OS's default (hardware_profile.h). A TPM is a TPM 2.0
  // emulated by swtpm, a process of its own that lives and dies with the VM.
  std::optional<Firmware> firmware{};
  std::optional<bool> tpm{};
  DisplaySpec display;
  // Where the VM keeps what must outlive one run: its UEFI variables (a copy of the
  // firmware's template, made on the first run) and its TPM's state. Empty: the runtime
  // directory, removed with the VM (a throwaway VM starts from the template every time).
  std::string state_dir;
  // A virtio-serial port for the QEMU guest agent (org.qemu.guest_agent.0), so that commands
  // can run in the guest (guest_agent.h). Harmless to a guest without an agent.
  bool agent = true;
  bool no_reboot = false;                  // a guest reboot (or panic with panic=-1) ends QEMU
  std::vector<std::string> firmware_dirs;  // -L; added automatically for a QEMU outside /usr
  std::vector<ShareSpec> shares;

  // A public QMP monitor at this path (mode 0600), besides kvmrun's private one.
  std::string qmp_socket;
  // Extra QEMU arguments, appended last and passed verbatim: the one place where the user
  // speaks QEMU's own syntax. They can override anything, the clock policy included
  // (verification then says so); options that detach QEMU are refused.
  std::vector<std::string> extra_args;

  VerifyMode verify = VerifyMode::kEnforce;

  // A snapshot (snapshot.h) to start from instead of booting: QEMU loads it (-incoming) and
  // the VM is paused at the instant it was saved. The rest of the spec must be the one it
  // was saved with; writable disks get a temporary overlay each.
  std::string restore_from;
};

// Parses a memory size: "512" (MiB), "512M", "2G", "1024K". Throws UsageError naming `field`
// and the valid forms for 0, garbage, or more than 1 EiB.
std::uint64_t ParseMemorySize(std::string_view text, std::string_view field = "memory_mib");

// Parses a disk argument, "FILE[,format=raw|qcow2][,bus=virtio|sata|ide|scsi]"; a comma in
// FILE is written ",,". Without format=, the file name decides (.qcow2 or .qcow: qcow2,
// anything else: raw); without bus=, the guest OS does.
// Throws UsageError naming `field`, the argument and the valid forms.
DiskSpec ParseDiskArgument(std::string_view text, bool read_only, bool snapshot,
                           std::string_view field = "disks");

// Parses a share argument, "HOSTDIR[,tag=TAG][,ro]" (a comma in HOSTDIR is written ",,").
// Without tag=, the tag is "share" followed by `index`. Throws UsageError naming `field`.
ShareSpec ParseShareArgument(std::string_view text, std::size_t index,
                             std::string_view field = "shares");

// Whether the file at `path` starts with a qcow2 header (for a warning when it is opened as
// raw; never to choose the format). False when it cannot be read.
bool HasQcow2Header(const std::string& path);

// Whether the disk image holds nothing yet: an empty file, a raw image whose first MiB is zeros
// (no partition table, no boot sector), or a qcow2 image with no backing file and no cluster
// allocated. False when it cannot be read (its own check reports that).
bool DiskIsBlank(const DiskSpec& disk);

// The names QEMU options accept for a machine type or CPU model: letters, digits, '.', '_',
// '-' (not first). Anything else would be read as more of QEMU's option syntax.
bool IsQemuModelName(std::string_view name);

// Options that would detach QEMU from kvmrun (-daemonize): kvmrun could no longer stop it,
// and would report "powered off" while the VM runs on. Returns the first one in `args`, or "".
std::string FindDetachingOption(const std::vector<std::string>& args);

// Checks everything that can be checked before QEMU runs: sizes, counts, names, that the
// kernel, initrd, disks and cdrom are readable regular files, that extra arguments do not
// detach QEMU, and that the public QMP socket path is free (absent, or a stale socket of this
// user's that nothing listens on: QEMU deletes whatever is there before it binds). Throws
// UsageError naming the first problem.
void ValidateVmSpec(const VmSpec& spec);

// The spec with every path made absolute (against the current directory): QEMU reads a name
// with a ':' before its first '/' as a protocol ("nbd:", "json:{...}"), which an absolute
// path cannot have. Relative paths would also change meaning for a process with another cwd.
VmSpec WithAbsolutePaths(VmSpec spec);

}  // namespace kvmrun

#endif  // KVMRUN_VM_SPEC_H_

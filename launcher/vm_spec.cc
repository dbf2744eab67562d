#include "kvmrun/vm_spec.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include "io/unique_fd.h"
#include "kvmrun/error.h"
#include "kvmrun/hardware_profile.h"
#include "policy/names.h"

namespace kvmrun {

std::string_view ToString(AccelRequest request) {
  switch (request) {
    case AccelRequest::kAuto:
      return "auto";
    case AccelRequest::kKvm:
      return "kvm";
    case AccelRequest::kTcg:
      return "tcg";
  }
  return "?";
}

std::string_view ToString(VerifyMode mode) {
  switch (mode) {
    case VerifyMode::kOff:
      return "off";
    case VerifyMode::kWarn:
      return "warn";
    case VerifyMode::kEnforce:
      return "enforce";
  }
  return "?";
}

std::string_view ToString(DiskFormat format) {
  switch (format) {
    case DiskFormat::kRaw:
      return "raw";
    case DiskFormat::kQcow2:
      return "qcow2";
  }
  return "?";
}

std::string_view ToString(DiskBus bus) {
  switch (bus) {
    case DiskBus::kVirtio:
      return "virtio";
    case DiskBus::kSata:
      return "sata";
    case DiskBus::kIde:
      return "ide";
    case DiskBus::kScsi:
      return "scsi";
  }
  return "?";
}

std::string_view ToString(Firmware firmware) {
  switch (firmware) {
    case Firmware::kBios:
      return "bios";
    case Firmware::kUefi:
      return "uefi";
    case Firmware::kUefiSecure:
      return "uefi-secure";
  }
  return "?";
}

std::string_view ToString(NicModel model) {
  switch (model) {
    case NicModel::kVirtio:
      return "virtio";
    case NicModel::kE1000e:
      return "e1000e";
    case NicModel::kE1000:
      return "e1000";
    case NicModel::kRtl8139:
      return "rtl8139";
  }
  return "?";
}

std::string_view ToString(DisplayKind kind) {
  switch (kind) {
    case DisplayKind::kNone:
      return "none";
    case DisplayKind::kVnc:
      return "vnc";
    case DisplayKind::kSpice:
      return "spice";
    case DisplayKind::kGtk:
      return "gtk";
  }
  return "?";
}

std::string_view ToString(BootFrom from) {
  switch (from) {
    case BootFrom::kAuto:
      return "auto";
    case BootFrom::kDisk:
      return "disk";
    case BootFrom::kCdrom:
      return "cdrom";
  }
  return "?";
}

Firmware ParseFirmware(std::string_view text, std::string_view field) {
  return ParseName(text, field, kAllFirmwares);
}

NicModel ParseNicModel(std::string_view text, std::string_view field) {
  return ParseName(text, field, kAllNicModels);
}

namespace {

constexpr std::uint64_t kMaxCpus = 1024;

// A TCP or UDP port number, 1 to 65535; nullopt otherwise.
std::optional<int> ParsePort(std::string_view text) {
  int port = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc() || end != text.data() + text.size() || port < 1 || port > 65535) {
    return std::nullopt;
  }
  return port;
}

// A dotted IPv4 address or "localhost": what QEMU's hostfwd and -vnc take without brackets.
bool IsHostAddress(std::string_view text) {
  if (text == "localhost") return true;
  int parts = 0;
  std::size_t at = 0;
  while (at <= text.size()) {
    const std::size_t end = std::min(text.find('.', at), text.size());
    int value = 0;
    const auto [stop, ec] = std::from_chars(text.data() + at, text.data() + end, value);
    if (ec != std::errc() || stop != text.data() + end || end == at || end - at > 3 ||
        value > 255) {
      return false;
    }
    ++parts;
    at = end + 1;
  }
  return parts == 4;
}

// Throws UsageError unless `path` names a readable regular file (or block device when
// `allow_block`).
void RequireReadableFile(const std::string& path, std::string_view what, bool allow_block) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    throw UsageError(std::string(what), "'" + path + "': " + std::strerror(errno));
  }
  const bool ok = S_ISREG(st.st_mode) || (allow_block && S_ISBLK(st.st_mode));
  if (!ok) {
    throw UsageError(
        std::string(what),
        "'" + path + "' is " + (S_ISDIR(st.st_mode) ? "a directory" : "not a regular file"));
  }
  if (access(path.c_str(), R_OK) != 0) {
    throw UsageError(std::string(what), "'" + path + "' is not readable: " + std::strerror(errno));
  }
}

// QEMU unlinks whatever is at a server socket's path before it binds. Only an absent path, or
// a socket of this user's that nobody listens on (left by a QEMU that was killed), is free.
void RequireFreeSocketPath(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw UsageError("qmp_socket", "'" + path + "': " + std::strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) {
    throw UsageError("qmp_socket", "'" + path +
                                       "' exists and is not a socket; QEMU would delete it "
                                       "(choose a new path)");
  }
  if (st.st_uid != getuid()) {
    throw UsageError("qmp_socket", "'" + path + "' is another user's socket");
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof(addr.sun_path) - 1));
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool live =
      fd >= 0 && connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  if (fd >= 0) close(fd);
  if (live) {
    throw UsageError("qmp_socket", "'" + path + "' is in use: a running program listens on it");
  }
}

std::uint64_t HostMemoryMib() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size) >> 20;
}

}  // namespace

AccelRequest ParseAccelRequest(std::string_view text, std::string_view field) {
  return ParseName(text, field, kAllAccelRequests);
}

VerifyMode ParseVerifyMode(std::string_view text, std::string_view field) {
  return ParseName(text, field, kAllVerifyModes);
}

std::uint64_t ParseMemorySize(std::string_view text, std::string_view field) {
  const auto bad = [&](const std::string& why) {
    return UsageError(std::string(field), "invalid value '" + std::string(text) + "' (" + why +
                                              "); valid: a size such as 512 (MiB), 512M, 2G");
  };
  std::uint64_t number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || end == text.data()) throw bad("not a number");
  // The unit: none (MiB), K, M, G or T, optionally followed by "iB" or "B", any case.
  std::string unit(end, text.data() + text.size());
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (unit.size() == 3 && unit.compare(1, 2, "ib") == 0) unit.resize(1);
  if (unit.size() == 2 && unit[1] == 'b') unit.resize(1);
  int shift = 0;  // to KiB
  if (unit.empty() || unit == "m") {
    shift = 10;
  } else if (unit == "k") {
    shift = 0;
  } else if (unit == "g") {
    shift = 20;
  } else if (unit == "t") {
    shift = 30;
  } else {
    throw bad("unknown unit '" + std::string(end, text.data() + text.size()) + "'");
  }
  constexpr std::uint64_t kMaxKib = std::uint64_t{1} << 50;  // 1 EiB: far above any real host
  if (number > (kMaxKib >> shift)) throw bad("too large");
  const std::uint64_t kib = number << shift;
  if (kib < 1024) throw bad("less than 1 MiB");
  if (kib % 1024 != 0) throw bad("not a whole number of MiB");
  return kib >> 10;
}

namespace {

// QEMU's convention for a value with options: ",," is a literal comma, a single ',' starts an
// option. Returns the value and the options after it.
std::pair<std::string, std::vector<std::string>> SplitCommaOptions(std::string_view text) {
  std::string value;
  std::size_t at = 0;
  for (; at < text.size(); ++at) {
    if (text[at] != ',') {
      value += text[at];
    } else if (at + 1 < text.size() && text[at + 1] == ',') {
      value += ',';
      ++at;
    } else {
      break;
    }
  }
  std::vector<std::string> options;
  while (at < text.size()) {
    const std::size_t end = std::min(text.find(',', at + 1), text.size());
    options.emplace_back(text.substr(at + 1, end - at - 1));
    at = end;
  }
  return {value, options};
}

bool IsShareTag(std::string_view tag) {
  return !tag.empty() && tag.size() <= 31 && std::all_of(tag.begin(), tag.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace

DiskSpec ParseDiskArgument(std::string_view text, bool read_only, bool snapshot,
                           std::string_view field) {
  const auto bad = [&](const std::string& why) {
    return UsageError(
        std::string(field),
        "invalid value '" + std::string(text) + "' (" + why +
            "); valid: FILE[,format=raw|qcow2][,bus=virtio|sata|ide|scsi] (write a comma "
            "in FILE as ,,)");
  };
  DiskSpec disk;
  disk.read_only = read_only;
  disk.snapshot = snapshot;
  auto [path, options] = SplitCommaOptions(text);
  disk.path = std::move(path);
  if (disk.path.empty()) throw bad("no file name");
  for (const std::string& item : options) {
    if (item.rfind("bus=", 0) == 0) {
      disk.bus = FindByName(std::string_view(item).substr(4), kAllDiskBuses);
      if (!disk.bus) throw bad("unknown bus '" + item.substr(4) + "'");
      continue;
    }
    if (item.rfind("format=", 0) != 0) throw bad("unknown option '" + item + "'");
    const auto format = FindByName(std::string_view(item).substr(7), kAllDiskFormats);
    if (!format) throw bad("unknown format '" + item.substr(7) + "'");
    disk.format = *format;
    disk.format_given = true;
  }
  if (!disk.format_given) {
    const std::string extension = std::filesystem::path(disk.path).extension().string();
    disk.format = EqualsIgnoreCase(extension, ".qcow2") || EqualsIgnoreCase(extension, ".qcow")
                      ? DiskFormat::kQcow2
                      : DiskFormat::kRaw;
  }
  return disk;
}

ShareSpec ParseShareArgument(std::string_view text, std::size_t index, std::string_view field) {
  const auto bad = [&](const std::string& why) {
    return UsageError(std::string(field), "invalid value '" + std::string(text) + "' (" + why +
                                              "); valid: HOSTDIR[,tag=TAG][,ro] (write a comma "
                                              "in HOSTDIR as ,,)");
  };
  auto [dir, options] = SplitCommaOptions(text);
  if (dir.empty()) throw bad("no directory");
  ShareSpec share{dir, "share" + std::to_string(index), false};
  for (const std::string& option : options) {
    if (option == "ro") {
      share.read_only = true;
    } else if (option.rfind("tag=", 0) == 0) {
      share.tag = option.substr(4);
      if (!IsShareTag(share.tag)) {
        throw bad("tag '" + share.tag + "' is not 1 to 31 letters, digits, '.', '_', '-'");
      }
    } else {
      throw bad("unknown option '" + option + "'");
    }
  }
  return share;
}

DisplaySpec ParseDisplayArgument(std::string_view text, std::string_view field) {
  const auto bad = [&](const std::string& why) {
    return UsageError(std::string(field),
                      "invalid value '" + std::string(text) + "' (" + why +
                          "); valid: none, vnc, vnc=unix, vnc=ADDR:PORT (PORT 5900 to 65535), "
                          "spice, gtk");
  };
  const std::size_t eq = text.find('=');
  DisplaySpec display;
  const auto kind = FindByName(text.substr(0, eq), kAllDisplayKinds);
  if (!kind) throw bad("unknown display '" + std::string(text.substr(0, eq)) + "'");
  display.kind = *kind;
  if (eq == std::string_view::npos) return display;
  if (display.kind != DisplayKind::kVnc) throw bad("only vnc takes a value");
  const std::string_view listen = text.substr(eq + 1);
  if (listen != "unix") {
    const std::size_t colon = listen.rfind(':');
    const auto port =
        colon == std::string_view::npos ? std::nullopt : ParsePort(listen.substr(colon + 1));
    if (!port || *port < 5900) throw bad("no port from 5900 to 65535");
    if (!IsHostAddress(listen.substr(0, colon))) {
      throw bad("'" + std::string(listen.substr(0, colon)) +
                "' is not an IPv4 address or localhost");
    }
  }
  display.listen = std::string(listen);
  return display;
}

PortForward ParseForwardArgument(std::string_view text, std::string_view field) {
  const auto bad = [&](const std::string& why) {
    return UsageError(std::string(field),
                      "invalid value '" + std::string(text) + "' (" + why +
                          "); valid: [tcp:|udp:][ADDR:]HOSTPORT:GUESTPORT, e.g. tcp:2222:22");
  };
  std::vector<std::string> parts;
  std::size_t at = 0;
  while (true) {
    const std::size_t end = text.find(':', at);
    parts.emplace_back(text.substr(at, end == std::string_view::npos ? end : end - at));
    if (end == std::string_view::npos) break;
    at = end + 1;
  }
  PortForward forward;
  if (parts.front() == "tcp" || parts.front() == "udp") {
    forward.protocol = parts.front();
    parts.erase(parts.begin());
  }
  if (parts.size() == 3) {
    if (!IsHostAddress(parts[0])) {
      throw bad("'" + parts[0] + "' is not an IPv4 address or localhost");
    }
    forward.host_address = parts[0];
    parts.erase(parts.begin());
  }
  if (parts.size() != 2) throw bad("not HOSTPORT:GUESTPORT");
  const auto host = ParsePort(parts[0]);
  const auto guest = ParsePort(parts[1]);
  if (!host) throw bad("host port '" + parts[0] + "' is not 1 to 65535");
  if (!guest) throw bad("guest port '" + parts[1] + "' is not 1 to 65535");
  forward.host_port = *host;
  forward.guest_port = *guest;
  return forward;
}

std::string ToString(const PortForward& forward) {
  return forward.protocol + ":" + forward.host_address + ":" + std::to_string(forward.host_port) +
         "-:" + std::to_string(forward.guest_port);
}

bool IsLoopbackAddress(std::string_view address) {
  return address == "localhost" || address.rfind("127.", 0) == 0;
}

namespace {

// A disk opened to read its first bytes: a regular file or a block device, never a FIFO or a
// character device (opening and reading those can block or consume what another reader is
// owed); invalid where it is neither or cannot be opened.
UniqueFd OpenDiskToPeek(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  struct stat st {};
  if (fd.get() < 0 || fstat(fd.get(), &st) != 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
    return UniqueFd();
  }
  return fd;
}

// Up to `length` bytes at `offset`; fewer at the end of the file or on a read error.
std::size_t ReadAt(int fd, std::uint64_t offset, unsigned char* buffer, std::size_t length) {
  std::size_t got = 0;
  while (got < length) {
    const ssize_t n = pread(fd, buffer + got, length - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  return got;
}

std::uint64_t BigEndian(const unsigned char* bytes, int count) {
  std::uint64_t value = 0;
  for (int i = 0; i < count; ++i) value = (value << 8) | bytes[i];
  return value;
}

// Whether the `length` bytes at `offset` are all zeros (past the end of the file counts as
// zeros, as a sparse file's tail reads).
bool ZerosAt(int fd, std::uint64_t offset, std::uint64_t length) {
  std::vector<unsigned char> buffer(64 * 1024);
  while (length > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(length, buffer.size()));
    const std::size_t got = ReadAt(fd, offset, buffer.data(), want);
    if (std::any_of(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(got),
                    [](unsigned char c) { return c != 0; })) {
      return false;
    }
    if (got < want) break;
    offset += got;
    length -= got;
  }
  return true;
}

}  // namespace

bool HasQcow2Header(const std::string& path) {
  const UniqueFd fd = OpenDiskToPeek(path);
  unsigned char magic[4] = {};
  return fd.get() >= 0 && ReadAt(fd.get(), 0, magic, sizeof magic) == sizeof magic &&
         std::memcmp(magic, "QFI\xfb", 4) == 0;
}

bool DiskIsBlank(const DiskSpec& disk) {
  const UniqueFd fd = OpenDiskToPeek(disk.path);
  if (fd.get() < 0) return false;
  unsigned char header[48] = {};
  const std::size_t got = ReadAt(fd.get(), 0, header, sizeof header);
  if (got == 0) return true;  // an empty file
  if (disk.format == DiskFormat::kQcow2) {
    if (got < sizeof header || std::memcmp(header, "QFI\xfb", 4) != 0) return false;
    if (BigEndian(header + 8, 8) != 0) return false;  // a backing file holds data
    // The L1 table: a zero entry is an unallocated range. At most 1 MiB of it is read (an
    // image with a larger table is not a new one).
    const std::uint64_t l1_entries = BigEndian(header + 36, 4);
    const std::uint64_t l1_offset = BigEndian(header + 40, 8);
    if (l1_entries > (1u << 17)) return false;
    return ZerosAt(fd.get(), l1_offset, l1_entries * 8);
  }
  return ZerosAt(fd.get(), 0, 1 << 20);
}

void ResolveBootOrder(const VmSpec& spec, HardwareProfile& profile) {
  if (spec.boot_from != BootFrom::kAuto || spec.cdroms.empty() || spec.disks.empty()) return;
  const bool blank = std::all_of(spec.disks.begin(), spec.disks.end(),
                                 [](const DiskSpec& d) { return d.read_only || DiskIsBlank(d); });
  if (blank) {
    profile.boot_from = BootFrom::kCdrom;
    profile.boot_reason = "every disk is blank: the cdrom's installer boots";
  } else {
    profile.boot_from = BootFrom::kDisk;
    profile.boot_reason = "a disk holds data: it boots (the cdrom after it)";
  }
}

bool IsQemuModelName(std::string_view name) {
  if (name.empty() || name.front() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::string FindDetachingOption(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    // QEMU accepts its options with one dash or two.
    const std::string_view name = std::string_view(arg).substr(arg.rfind("--", 0) == 0 ? 2 : 1);
    if (!arg.empty() && arg[0] == '-' && name == "daemonize") return arg;
  }
  return "";
}

VmSpec WithAbsolutePaths(VmSpec spec) {
  const auto absolute = [](std::string& path) {
    if (path.empty() || path.front() == '/') return;
    std::error_code ec;
    const std::filesystem::path made = std::filesystem::absolute(path, ec);
    if (!ec) path = made.string();
  };
  absolute(spec.qemu);
  absolute(spec.kernel);
  absolute(spec.initrd);
  absolute(spec.state_dir);
  for (std::string& cdrom : spec.cdroms) absolute(cdrom);
  absolute(spec.qmp_socket);
  absolute(spec.restore_from);
  for (DiskSpec& disk : spec.disks) absolute(disk.path);
  for (std::string& dir : spec.firmware_dirs) absolute(dir);
  for (ShareSpec& share : spec.shares) absolute(share.host_dir);
  return spec;
}

void ValidateVmSpec(const VmSpec& spec) {
  if (spec.name.empty()) throw UsageError("name", "the VM name must not be empty");
  if (!spec.machine.empty() && !IsQemuModelName(spec.machine)) {
    throw UsageError("machine", "invalid value '" + spec.machine +
                                    "'; valid: a machine type such as q35 or pc-i440fx-7.2 "
                                    "(letters, digits, '.', '_', '-'; properties go in the "
                                    "extra arguments)");
  }
  if (!spec.cpu_model.empty() && !IsQemuModelName(spec.cpu_model)) {
    throw UsageError("cpu_model", "invalid value '" + spec.cpu_model +
                                      "'; valid: a CPU model such as max or Skylake-Client "
                                      "(letters, digits, '.', '_', '-'; features go in the "
                                      "extra arguments)");
  }
  if (const std::string detach = FindDetachingOption(spec.extra_args); !detach.empty()) {
    throw UsageError("extra_args",
                     "'" + detach +
                         "' would detach QEMU from kvmrun, which then could not stop it; "
                         "kvmrun refuses it");
  }
  if (spec.memory_mib == 0) throw UsageError("memory_mib", "the VM needs at least 1 MiB");
  const std::uint64_t host_mib = HostMemoryMib();
  if (host_mib != 0 && spec.memory_mib > host_mib) {
    throw UsageError("memory_mib", std::to_string(spec.memory_mib) +
                                       " MiB is more than this host's " + std::to_string(host_mib) +
                                       " MiB of RAM");
  }
  if (spec.cpus < 1 || static_cast<std::uint64_t>(spec.cpus) > kMaxCpus) {
    throw UsageError("cpus", "invalid value '" + std::to_string(spec.cpus) + "'; valid: 1 to " +
                                 std::to_string(kMaxCpus));
  }
  if (spec.kernel.empty() && (!spec.initrd.empty() || !spec.append.empty())) {
    throw UsageError("kernel", "an initrd or a kernel command line needs a kernel");
  }
  if (!spec.kernel.empty()) RequireReadableFile(spec.kernel, "kernel", false);
  if (!spec.initrd.empty()) RequireReadableFile(spec.initrd, "initrd", false);
  for (const DiskSpec& disk : spec.disks) {
    RequireReadableFile(disk.path, "disks", true);
    if (!disk.read_only && !disk.snapshot && access(disk.path.c_str(), W_OK) != 0) {
      throw UsageError("disks", "'" + disk.path +
                                    "' is not writable (open it read-only, or with writes "
                                    "discarded)");
    }
  }
  for (const std::string& cdrom : spec.cdroms) RequireReadableFile(cdrom, "cdrom", true);
  std::set<std::pair<std::string, int>> host_ports;
  for (const PortForward& forward : spec.forwards) {
    if (!host_ports.emplace(forward.protocol, forward.host_port).second) {
      throw UsageError("forwards", "host port " + forward.protocol + ":" +
                                       std::to_string(forward.host_port) + " is forwarded twice");
    }
  }
  if (!spec.state_dir.empty()) {
    std::error_code ec;
    if (std::filesystem::exists(spec.state_dir, ec) &&
        !std::filesystem::is_directory(spec.state_dir, ec)) {
      throw UsageError("state_dir", "'" + spec.state_dir + "' is not a directory");
    }
  }
  std::set<std::string> tags;
  for (const ShareSpec& share : spec.shares) {
    std::error_code ec;
    if (!std::filesystem::is_directory(share.host_dir, ec)) {
      throw UsageError("shares", "'" + share.host_dir + "' is not a directory");
    }
    if (!IsShareTag(share.tag)) {
      throw UsageError("shares",
                       "tag '" + share.tag + "' is not 1 to 31 letters, digits, '.', '_', '-'");
    }
    if (!tags.insert(share.tag).second) {
      throw UsageError("shares", "the tag '" + share.tag + "' is used twice");
    }
  }
  for (const std::string& dir : spec.firmware_dirs) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      throw UsageError("firmware_dirs", "'" + dir + "' is not a directory");
    }
  }
  if (!spec.qmp_socket.empty()) {
    constexpr std::size_t kMax = sizeof(sockaddr_un::sun_path) - 1;
    if (spec.qmp_socket.size() > kMax) {
      throw UsageError("qmp_socket", "the path is " + std::to_string(spec.qmp_socket.size()) +
                                         " bytes; a Unix socket path must be at most " +
                                         std::to_string(kMax));
    }
    RequireFreeSocketPath(spec.qmp_socket);
  }
}

}  // namespace kvmrun

#include "kvmrun/snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <thread>
#include <vector>

#include "core/safe_text.h"
#include "io/errno_text.h"
#include "io/safe_file.h"
#include "io/unique_fd.h"
#include "kvmrun/clock_rendering.h"
#include "kvmrun/error.h"
#include "kvmrun/policy_format.h"
#include "kvmrun/qemu_command.h"
#include "kvmrun/qmp_codec.h"
#include "kvmrun/qmp_commands.h"
#include "qmp/json_fields.h"

namespace kvmrun {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr char kMagic[] = "KVMRUN-SNAPSHOT\n";
constexpr char kFdName[] = "kvmrun-snapshot";

std::int64_t RealtimeNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string UtcText(std::int64_t realtime_ns) {
  const std::time_t seconds = static_cast<std::time_t>(realtime_ns / 1'000'000'000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace

nlohmann::json SnapshotIdentityToJson(const SnapshotIdentity& id) {
  nlohmann::json disks = nlohmann::json::array();
  for (const SnapshotDisk& d : id.disks) {
    disks.push_back({{"path", d.path}, {"size", d.size}, {"mtime_ns", d.mtime_ns}});
  }
  nlohmann::json out = {{"qemu", id.qemu},   {"qemu_version", id.qemu_version},
                        {"accel", id.accel}, {"os", id.os},
                        {"argv", id.argv},   {"disks", disks},
                        {"agent", id.agent}};
  if (id.policy) out["policy"] = ClockPolicyToJson(*id.policy);
  return out;
}

SnapshotIdentity SnapshotIdentityFromJson(const nlohmann::json& j) {
  const JsonFields fields(j, "identity");
  SnapshotIdentity id;
  id.qemu = fields.String("qemu");
  id.qemu_version = fields.String("qemu_version");
  id.accel = fields.String("accel");
  id.os = fields.String("os");
  id.argv = fields.StringArray("argv");
  const auto& disks = fields.Array("disks");
  for (std::size_t i = 0; i < disks.size(); ++i) {
    const JsonFields d(disks[i], "identity.disks[" + std::to_string(i) + "]");
    id.disks.push_back({d.String("path"), d.Uint("size"), d.Int("mtime_ns")});
  }
  id.agent = fields.BoolOr("agent", false);
  if (const nlohmann::json* policy = fields.Find("policy")) {
    try {
      id.policy = ClockPolicyFromJson(*policy);
    } catch (const UsageError& e) {
      throw MalformedJson("identity", "policy", e.what());
    }
  }
  return id;
}

namespace {

// The option an argument belongs to: itself when it is one, else the one before it.
std::string OptionAt(const std::vector<std::string>& argv, std::size_t i) {
  if (i >= argv.size()) return "";
  if (argv[i].rfind('-', 0) == 0 || i == 0) return argv[i];
  return argv[i - 1] + " " + argv[i];
}

// Four independent multiply-rotate lanes over 8-byte words (the CPU overlaps them), mixed at
// the end; runs at several GB/s, so checking a restore costs less than QEMU's load of it.
class Mix64 {
 public:
  void Update(const char* data, std::size_t size) {
    while (size > 0) {
      if (fill_ == 0 && size >= sizeof(block_)) {
        Block(data);
        data += sizeof(block_);
        size -= sizeof(block_);
        continue;
      }
      const std::size_t take = std::min(size, sizeof(block_) - fill_);
      std::memcpy(block_ + fill_, data, take);
      fill_ += take;
      data += take;
      size -= take;
      if (fill_ == sizeof(block_)) {
        Block(block_);
        fill_ = 0;
      }
    }
  }
  std::uint64_t Finish(std::uint64_t length) {
    std::memset(block_ + fill_, 0, sizeof(block_) - fill_);
    if (fill_ > 0) Block(block_);
    std::uint64_t h = length * kPrime;
    for (std::uint64_t lane : lanes_) h = Rotl(h ^ Round(lane), 27) * kPrime + 0x9E3779B97F4A7C15;
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    return h;
  }

 private:
  static constexpr std::uint64_t kPrime = 0x9E3779B185EBCA87ULL;
  static std::uint64_t Rotl(std::uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
  static std::uint64_t Round(std::uint64_t x) { return Rotl(x * 0xC2B2AE3D27D4EB4FULL, 31); }
  void Block(const char* data) {
    for (int i = 0; i < 4; ++i) {
      std::uint64_t word;
      std::memcpy(&word, data + 8 * i, 8);
      lanes_[i] = Rotl(lanes_[i] + word * 0xC2B2AE3D27D4EB4FULL, 31) * kPrime;
    }
  }
  std::uint64_t lanes_[4] = {1, 2, 3, 4};
  char block_[32] = {};
  std::size_t fill_ = 0;
};

// Removes the file at `path` unless Keep() was called.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (!path_.empty()) unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }
  void Keep() { path_.clear(); }

 private:
  std::string path_;
};

// Polls query-migrate until the outgoing migration has ended; Error unless it completed.
void WaitForMigration(QmpClient& qmp, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    const nlohmann::json reply = qmp.Execute("query-migrate");
    const JsonFields info(reply, "query-migrate's reply");
    const std::string status = info.StringOr("status", "");
    if (status == "completed") return;
    if (status == "cancelled") {
      // kvmrun's stop of the VM cancels a save in progress (as may any QMP client).
      throw Error("the snapshot save was cancelled (the VM is being stopped, or a QMP client "
                  "cancelled it); nothing was saved");
    }
    if (status == "failed") {
      throw Error("QEMU's migration to the snapshot file " + status + ": " +
                  info.StringOr("error-desc", "(no reason given)"));
    }
    if (Clock::now() >= deadline) {
      try {
        qmp.Execute("migrate_cancel");
      } catch (const Error&) {
      }
      throw Error("saving the snapshot took longer than " + std::to_string(timeout.count() / 1000) +
                  " s; cancelled");
    }
    std::this_thread::sleep_for(10ms);
  }
}

}  // namespace

std::vector<std::string> SnapshotArgv(const std::vector<std::string>& argv,
                                      const std::string& runtime_dir) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (i == 0) {
      out.push_back("qemu");  // the version is compared, not where the binary lives
      continue;
    }
    const bool has_value = i + 1 < argv.size();
    if (arg == "-name" && has_value) {
      ++i;
      continue;
    }
    if ((arg == "-chardev" || arg == "-mon") && has_value &&
        argv[i + 1].find(kPublicQmpChardevId) != std::string::npos) {
      ++i;
      continue;
    }
    std::string normal = arg;
    if (!runtime_dir.empty()) {
      for (std::size_t at; (at = normal.find(runtime_dir)) != std::string::npos;) {
        normal.replace(at, runtime_dir.size(), "$RUNTIME_DIR");
      }
    }
    out.push_back(std::move(normal));
  }
  return out;
}

SnapshotDisk DescribeDisk(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    throw UsageError("disk '" + path + "' cannot be read: " + Errno());
  }
  return {path, static_cast<std::uint64_t>(st.st_size),
          static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

nlohmann::json SnapshotHeaderToJson(const SnapshotHeader& header) {
  return {{"format", header.format},
          {"identity", SnapshotIdentityToJson(header.identity)},
          {"saved_realtime_ns", header.saved_realtime_ns},
          {"saved_at", header.saved_at},
          {"state_offset", kSnapshotHeaderBytes},
          {"state_bytes", header.state_bytes},
          {"checksum", header.checksum}};
}

std::string EncodeSnapshotHeader(const SnapshotHeader& header) {
  std::string text = kMagic + DumpJson(SnapshotHeaderToJson(header)) + "\n";
  if (text.size() > kSnapshotHeaderBytes) {
    throw Error("the snapshot's header is " + std::to_string(text.size()) +
                " bytes, more than the " + std::to_string(kSnapshotHeaderBytes) +
                " it has room for (a very long QEMU command line?)");
  }
  text.resize(kSnapshotHeaderBytes, ' ');
  return text;
}

SnapshotHeader ParseSnapshotHeader(std::string_view text, const std::string& what) {
  if (text.rfind(kMagic, 0) != 0) {
    throw UsageError(what + " is not a kvmrun snapshot (no KVMRUN-SNAPSHOT header)");
  }
  if (text.size() < kSnapshotHeaderBytes) {
    throw UsageError(what + " is truncated: " + std::to_string(text.size()) +
                     " bytes, shorter than its " + std::to_string(kSnapshotHeaderBytes) +
                     "-byte header");
  }
  // The header is JSON and then NUL padding to its fixed size.
  std::string_view json_text =
      text.substr(sizeof(kMagic) - 1, kSnapshotHeaderBytes - (sizeof(kMagic) - 1));
  json_text = json_text.substr(0, json_text.find('\0'));
  SnapshotHeader header;
  try {
    const nlohmann::json j = ParseBoundedJson(json_text);
    const JsonFields fields(j, "header");
    header.format = static_cast<int>(fields.Int("format", 0, 1000));
    if (header.format != kSnapshotFormat) {
      throw UsageError(what + " has format " + std::to_string(header.format) +
                       "; this kvmrun reads format " + std::to_string(kSnapshotFormat));
    }
    header.identity = SnapshotIdentityFromJson(fields.Required("identity"));
    header.saved_realtime_ns = fields.Int("saved_realtime_ns");
    header.saved_at = fields.String("saved_at");
    // At most 1 TiB of state: the size check below then cannot overflow.
    header.state_bytes = fields.Uint("state_bytes", std::uint64_t{1} << 40);
    header.checksum = fields.String("checksum");
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {  // MalformedJson, JsonTooDeep
    throw UsageError(what + " has a corrupt header: " + SafeExcerpt(e.what(), 300));
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(what + " has a corrupt header: " + SafeExcerpt(e.what(), 300));
  }
  return header;
}

namespace {

UniqueFd OpenSnapshot(const std::string& path, const std::string& what) {
  try {
    return OpenRegularFile(path, FinalLink::kFollow);
  } catch (const CannotOpenFile& e) {
    throw UsageError(what + " cannot be opened: " + std::strerror(e.error_number()));
  } catch (const UnsafePath& e) {
    throw UsageError(what + " cannot be used: " + e.what());
  }
}

}  // namespace

SnapshotHeader ReadSnapshotHeader(const std::string& path) {
  const std::string what = "snapshot '" + path + "'";
  // A FIFO or device named here would block the read (and a restore masks signals meanwhile).
  const UniqueFd fd = OpenSnapshot(path, what);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) throw UsageError(what + " cannot be read: " + Errno());
  std::string text(kSnapshotHeaderBytes, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  SnapshotHeader header = ParseSnapshotHeader(text, what);
  const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  if (size != kSnapshotHeaderBytes + header.state_bytes) {
    throw UsageError(what + " is " +
                     (size < kSnapshotHeaderBytes + header.state_bytes
                          ? "truncated"
                          : "longer than its header says") +
                     ": " + std::to_string(size) + " bytes where the header says " +
                     std::to_string(kSnapshotHeaderBytes + header.state_bytes));
  }
  return header;
}

void CheckSnapshotMatches(const SnapshotHeader& saved, const SnapshotIdentity& now,
                          const std::string& path) {
  const std::string prefix = "cannot restore '" + path + "': ";
  const SnapshotIdentity& was = saved.identity;
  if (was.qemu_version != now.qemu_version) {
    throw UsageError(prefix + "it was saved by QEMU " + was.qemu_version + " (" + was.qemu +
                     "), this is QEMU " + now.qemu_version + " (" + now.qemu +
                     "); restore it with that QEMU");
  }
  if (was.accel != now.accel) {
    throw UsageError(prefix + "it was saved under " + was.accel + ", this VM runs under " +
                     now.accel + " (restore it under " + was.accel + ")");
  }
  // The clock options are compared by what they mean: kvmrun has spelt the same policy
  // differently over time (QEMU's defaults left out, then every decision written), and a file
  // saved then still holds the same VM.
  const std::vector<std::string> was_rest = WithoutClockOptions(was.argv);
  const std::vector<std::string> now_rest = WithoutClockOptions(now.argv);
  for (std::size_t i = 0; i < std::max(was_rest.size(), now_rest.size()); ++i) {
    if (i < was_rest.size() && i < now_rest.size() && was_rest[i] == now_rest[i]) continue;
    const std::string saved_arg = OptionAt(was_rest, i);
    const std::string now_arg = OptionAt(now_rest, i);
    throw UsageError(prefix + "the VM must be started as it was saved: the snapshot has '" +
                     (saved_arg.empty() ? "(nothing)" : saved_arg) + "' where this VM has '" +
                     (now_arg.empty() ? "(nothing)" : now_arg) + "'");
  }
  const ClockMeaning was_clock = ClockMeaningOf(was.argv), now_clock = ClockMeaningOf(now.argv);
  if (was_clock != now_clock) {
    throw UsageError(prefix + "it was saved with another clock (" + ToString(was_clock) +
                     ") than this VM's (" + ToString(now_clock) +
                     "); start it with the OS and overrides it was saved with" +
                     (was.policy ? " (" + std::string(ToString(was.policy->os)) +
                                       (OverridesText(OverridesOf(*was.policy)).empty()
                                            ? ""
                                            : ", " + OverridesText(OverridesOf(*was.policy))) +
                                       ")"
                                 : ""));
  }
  for (const SnapshotDisk& disk : was.disks) {
    struct stat st {};
    if (stat(disk.path.c_str(), &st) != 0) {
      throw UsageError(prefix + "its disk '" + disk.path + "' is missing: " + Errno());
    }
    const SnapshotDisk current = DescribeDisk(disk.path);
    if (current.size != disk.size || current.mtime_ns != disk.mtime_ns) {
      throw UsageError(prefix + "its disk '" + disk.path +
                       "' changed since the snapshot was saved (size or modification time); "
                       "the guest's memory would not match it");
    }
  }
}

std::string StateChecksum(int fd, std::uint64_t offset, std::uint64_t length) {
  Mix64 mix;
  std::vector<char> buffer(4 << 20);
  for (std::uint64_t done = 0; done < length;) {
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), length - done));
    const ssize_t n = pread(fd, buffer.data(), want, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error("cannot read the snapshot's state: " + (n < 0 ? Errno() : "too short"));
    mix.Update(buffer.data(), static_cast<std::size_t>(n));
    done += static_cast<std::uint64_t>(n);
  }
  char text[20];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(mix.Finish(length)));
  return text;
}

void VerifySnapshotChecksum(const std::string& path, const SnapshotHeader& header) {
  const UniqueFd fd = OpenSnapshot(path, "snapshot '" + path + "'");
  const std::string sum = StateChecksum(fd.get(), kSnapshotHeaderBytes, header.state_bytes);
  if (sum != header.checksum) {
    throw UsageError("snapshot '" + path + "' is corrupt: its state's checksum is " + sum +
                     ", the header says " + header.checksum);
  }
}

SnapshotSaveResult SaveSnapshot(QmpClient& qmp, const SnapshotIdentity& identity,
                                const std::string& path, std::chrono::milliseconds timeout) {
  const auto start = Clock::now();
  std::string pattern = path + ".kvmrun-XXXXXX";
  UniqueFd fd(mkostemp(pattern.data(), O_CLOEXEC));
  if (fd.get() < 0) throw Error("cannot create a file beside '" + path + "': " + Errno());
  TempFile temp(pattern);
  if (ftruncate(fd.get(), kSnapshotHeaderBytes) != 0 ||
      lseek(fd.get(), kSnapshotHeaderBytes, SEEK_SET) < 0) {
    throw Error("cannot write '" + temp.path() + "': " + Errno());
  }

  SnapshotSaveResult result;
  SnapshotHeader& header = result.header;
  header.identity = identity;
  qmp.Execute("stop");
  header.saved_realtime_ns = RealtimeNs();
  header.saved_at = UtcText(header.saved_realtime_ns);
  // QEMU 7.2 throttles migration to 128 MiB/s by default; a file takes whatever comes.
  try {
    qmp.Execute("migrate-set-parameters", {{"max-bandwidth", std::int64_t{1} << 40}});
  } catch (const QmpError&) {
  }
  qmp.ExecuteWithFd("getfd", {{"fdname", kFdName}}, fd.get());
  try {
    qmp.Execute("migrate", {{"uri", std::string("fd:") + kFdName}});
  } catch (const QmpError&) {
    try {
      qmp.Execute("closefd", {{"fdname", kFdName}});
    } catch (const Error&) {
    }
    throw;
  }
  WaitForMigration(qmp, timeout);
  // QEMU has flushed the disks at the end of the migration: they are what a restore needs.
  for (SnapshotDisk& disk : header.identity.disks) disk = DescribeDisk(disk.path);

  struct stat st {};
  if (fstat(fd.get(), &st) != 0) throw Error("cannot stat '" + temp.path() + "': " + Errno());
  header.state_bytes = static_cast<std::uint64_t>(st.st_size) - kSnapshotHeaderBytes;
  header.checksum = StateChecksum(fd.get(), kSnapshotHeaderBytes, header.state_bytes);
  const std::string text = EncodeSnapshotHeader(header);
  if (pwrite(fd.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()) ||
      fdatasync(fd.get()) != 0) {
    throw Error("cannot write '" + temp.path() + "': " + Errno());
  }
  if (rename(temp.path().c_str(), path.c_str()) != 0) {
    throw Error("cannot rename '" + temp.path() + "' to '" + path + "': " + Errno());
  }
  temp.Keep();
  result.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return result;
}

void WaitForIncoming(QmpClient& qmp, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  // QEMU 7.2 exits when a load fails (its stderr says why); a newer one may stay, failed.
  for (int polls = 0; QueryStatus(qmp).status == "inmigrate"; ++polls) {
    if (polls % 50 == 49) {
      const nlohmann::json reply = qmp.Execute("query-migrate");
      const JsonFields info(reply, "query-migrate's reply");
      if (info.StringOr("status", "") == "failed") {
        throw Error("QEMU could not load the snapshot: " +
                    info.StringOr("error-desc", "(no reason given)"));
      }
    }
    if (Clock::now() >= deadline) {
      throw QmpTimeout("the snapshot was not loaded within " +
                       std::to_string(timeout.count() / 1000) + " s");
    }
    std::this_thread::sleep_for(2ms);
  }
}

}  // namespace kvmrun

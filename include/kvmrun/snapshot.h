// VM snapshots: a paused VM's whole state (memory and devices, through QEMU's migration
// stream) in one file, restored by a new QEMU started with the same command line.
//
//   vm->SaveSnapshot("booted.kvmrun");          // pauses the VM; it stays paused
//   spec.restore_from = "booted.kvmrun";          // same spec otherwise
//   auto copy = kvmrun::Vm::Start(spec);        // -incoming: paused, at the saved instant
//
// The file: a 64 KiB header (a magic line, then JSON saying what the state belongs to) and,
// after it, QEMU's migration stream exactly as QEMU wrote it. The header is written last, so
// a save that did not finish never looks like a snapshot; it is also written to a temporary
// name first and renamed. QEMU gets the file as a descriptor (QMP getfd, `migrate fd:`;
// `-incoming fd:N`), never as a path or a shell command.
//
// A restore is refused (UsageError naming what differs) unless the QEMU version, the
// accelerator and the QEMU command line (without what is private to one run: -name, sockets in
// the runtime directory, the public QMP socket) are the ones saved, and every writable disk
// is present and unchanged since the save (size and modification time). A restored VM never
// writes its disks: each writable disk gets its own temporary overlay (-drive snapshot=on),
// so restores of one snapshot never see each other's writes.
#ifndef KVMRUN_SNAPSHOT_H_
#define KVMRUN_SNAPSHOT_H_

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "kvmrun/clock_policy.h"
#include "kvmrun/qmp_client.h"

namespace kvmrun {

// A disk the guest could write: it must not change between save and restore.
struct SnapshotDisk {
  std::string path;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
};

// What a state belongs to: everything that must be the same for QEMU to load it.
struct SnapshotIdentity {
  std::string qemu;          // the binary that saved it (informative)
  std::string qemu_version;  // "7.2.22": must match
  std::string accel;         // "kvm" or "tcg": must match
  std::string os;            // the policy's guest OS (informative: the argv has the clocks)
  // The whole policy the VM ran under, overrides marked (absent in files saved before it was
  // kept): what a restored VM is judged by, and what `snapshot show` reports.
  std::optional<ClockPolicy> policy;
  // SnapshotArgv(): must match, its clock options by meaning (ClockMeaningOf: a file saved when
  // kvmrun spelt them otherwise restores), everything else exactly.
  std::vector<std::string> argv;
  std::vector<SnapshotDisk> disks;
  bool agent = false;  // the VM has a guest agent port
};

nlohmann::json SnapshotIdentityToJson(const SnapshotIdentity& identity);
// Throws MalformedJson (qmp/json_fields.h) naming the field for JSON that is not an identity.
SnapshotIdentity SnapshotIdentityFromJson(const nlohmann::json& json);

// `argv` without what is private to one run: -name and its value, the public QMP monitor, and
// `runtime_dir` (replaced by "$RUNTIME_DIR").
std::vector<std::string> SnapshotArgv(const std::vector<std::string>& argv,
                                      const std::string& runtime_dir);
// The size and modification time of the file at `path`; UsageError when it cannot be read.
SnapshotDisk DescribeDisk(const std::string& path);

inline constexpr std::uint64_t kSnapshotHeaderBytes = 65536;
inline constexpr int kSnapshotFormat = 1;

struct SnapshotHeader {
  int format = kSnapshotFormat;
  SnapshotIdentity identity;
  std::int64_t saved_realtime_ns = 0;  // host CLOCK_REALTIME when the VM was paused for it
  std::string saved_at;                // the same, as UTC "2026-11-30T20:01:02Z"
  std::uint64_t state_bytes = 0;       // QEMU's stream after the header
  std::string checksum;                // StateChecksum() of that stream, 16 hex digits
};

nlohmann::json SnapshotHeaderToJson(const SnapshotHeader& header);
// The header as it starts the file: kSnapshotHeaderBytes bytes. Error when it does not fit.
std::string EncodeSnapshotHeader(const SnapshotHeader& header);

// Parses a header's text (the file's first kSnapshotHeaderBytes, or fewer when it is shorter):
// UsageError, naming `what`, for anything that is not a header of this format, read field by
// field (fuzzed: snapshot_header_fuzzer). Checks nothing against the file's length.
SnapshotHeader ParseSnapshotHeader(std::string_view text, const std::string& what);

// Reads and checks the header of the snapshot at `path` (a regular file: a FIFO is refused
// before anything blocks on it): UsageError for a file that is
// missing, not a snapshot, of another format version, or shorter than its header says
// (truncated).
SnapshotHeader ReadSnapshotHeader(const std::string& path);

// A fast 64-bit checksum (not cryptographic: it finds damage, not tampering) of the `length`
// bytes of `fd` from `offset`, as 16 hex digits. Error when they cannot be read.
std::string StateChecksum(int fd, std::uint64_t offset, std::uint64_t length);
// UsageError when the stream of the snapshot at `path` does not have the header's checksum:
// the file was damaged after it was saved. Restores run it while QEMU loads the state, and
// the guest runs only once it passed.
void VerifySnapshotChecksum(const std::string& path, const SnapshotHeader& header);

// UsageError naming the first thing in `now` the snapshot at `path` was not saved with: the
// QEMU version, the accelerator, an argument, a disk missing or changed.
void CheckSnapshotMatches(const SnapshotHeader& saved, const SnapshotIdentity& now,
                          const std::string& path);

struct SnapshotSaveResult {
  SnapshotHeader header;
  std::chrono::milliseconds took{0};  // from the pause to the file in place
};

// Pauses the VM behind `qmp` (QMP stop) and writes its state to `path` (replacing a file
// there only once the new one is complete). The VM stays paused. The disks of `identity` are
// described (size, modification time) once QEMU has flushed them at the end. Throws QmpError (QEMU
// refused to migrate: a 9p share mounted in the guest is a migration blocker, say), Error
// (the file could not be written, the migration failed or took longer than `timeout`); no
// file is left at `path` or beside it then.
SnapshotSaveResult SaveSnapshot(QmpClient& qmp, const SnapshotIdentity& identity,
                                const std::string& path,
                                std::chrono::milliseconds timeout = std::chrono::minutes(10));

// Waits until QEMU, started with -incoming, has loaded the state it was given: Error with
// QEMU's reason when the load failed, QmpTimeout after `timeout`.
void WaitForIncoming(QmpClient& qmp, std::chrono::milliseconds timeout);

}  // namespace kvmrun

#endif  // KVMRUN_SNAPSHOT_H_

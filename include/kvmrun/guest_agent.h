// A client for the QEMU guest agent (qemu-ga), the program inside the guest that runs commands,
// reads and writes files and reads or sets the clock for the host. It listens on the
// virtio-serial port org.qemu.guest_agent.0 (kvmrun adds the port to every VM unless told not
// to) and speaks QMP's framing without a greeting; this client stands on qmp's codec and
// transport.
//
//   GuestAgent agent(ConnectQmpSocket(vm->agent_socket()));
//   agent.Sync(60s);                            // waits while the guest boots
//   GuestExecResult r = agent.Exec({.argv = {"uname", "-r"}});
//
// What makes agents hard to drive, handled here:
// - Stale replies: a reply to an earlier client's command (or to one that timed out) may sit
//   in the stream. Sync() sends guest-sync-delimited with a fresh id and drops everything
//   until the agent's 0xFF marker and the reply with that id; every command carries an id and
//   a reply with another id is dropped. After a timeout the next call syncs again.
// - An agent that is not there yet (the guest is booting) or never (no qemu-guest-agent in the
//   guest): Sync() waits up to its deadline, sending a new sync every second, then throws
//   GuestAgentUnavailable naming the port and what the guest needs.
// - Output in base64 chunks: decoded here; bytes stay bytes (binary output is intact).
//
// Not thread-safe: one caller at a time (the agent itself serves one command at a time).
#ifndef KVMRUN_GUEST_AGENT_H_
#define KVMRUN_GUEST_AGENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/error.h"
#include "kvmrun/qmp_codec.h"
#include "kvmrun/qmp_transport.h"

namespace kvmrun {

// The virtio-serial port name qemu-ga listens on.
inline constexpr char kGuestAgentPort[] = "org.qemu.guest_agent.0";

// No agent answered within the deadline.
class GuestAgentUnavailable : public Error {
 public:
  using Error::Error;
};

// The agent answered a command with an error.
class GuestAgentError : public Error {
 public:
  GuestAgentError(std::string command, std::string error_class, std::string description);
  const std::string& command() const { return command_; }
  const std::string& error_class() const { return error_class_; }
  const std::string& description() const { return description_; }

 private:
  std::string command_;
  std::string error_class_;
  std::string description_;
};

// A guest command that ran past its deadline; it was killed in the guest.
class GuestExecTimeout : public Error {
 public:
  using Error::Error;
};

struct GuestExecRequest {
  // argv[0] is the program, searched in the agent's PATH (an absolute path is safest).
  std::vector<std::string> argv;
  std::vector<std::string> env;      // "NAME=value", added to the agent's environment
  std::optional<std::string> input;  // bytes for the command's stdin (none: stdin is empty)
  std::chrono::milliseconds timeout{60000};
};

struct GuestExecResult {
  // The exit status as the agent reported it, whole: 0-255 from a Linux guest, any 32-bit
  // value from a Windows guest (a failure there can be 0xC0000005, or 256). Meaningless when
  // `signal` is set.
  std::int64_t exit_code = -1;
  int signal = 0;  // the signal that killed it, else 0
  std::string out;
  std::string err;
  bool out_truncated = false;  // the agent keeps at most 16 MiB of each (qemu-ga's limit)
  bool err_truncated = false;
  std::chrono::microseconds elapsed{0};

  bool Success() const { return signal == 0 && exit_code == 0; }
};

struct AgentOsInfo {
  std::string id;              // "debian"
  std::string pretty_name;     // "Debian GNU/Linux 12 (bookworm)"
  std::string kernel_release;  // "6.1.0-27-amd64"
  std::string machine;         // "x86_64"
  nlohmann::json json;         // everything the agent said
};

class GuestAgent {
 public:
  // How long one command may take by default.
  static constexpr std::chrono::milliseconds kDefaultTimeout{10000};
  // How long a caller waits by default for an agent that may still be starting: a guest that
  // was just continued boots for seconds (tens of seconds under TCG) before qemu-ga answers.
  // Vm::ConnectAgent, Vm::Exec and `kvmrun exec --agent-wait` share it.
  static constexpr std::chrono::milliseconds kDefaultAgentWait{60000};

  // Takes the connection to the agent's port. Nothing is sent yet.
  explicit GuestAgent(std::unique_ptr<QmpTransport> transport);
  ~GuestAgent();
  GuestAgent(const GuestAgent&) = delete;
  GuestAgent& operator=(const GuestAgent&) = delete;

  // Waits until the agent answers, dropping whatever older bytes come first. Throws
  // GuestAgentUnavailable after `timeout`, QmpDisconnected when the port closes.
  void Sync(std::chrono::milliseconds timeout);

  // No exchange goes past `deadline` (each call's own timeout still applies within it): a
  // caller with an overall time limit (verify --timeout) sets it once, and a guest that floods
  // the port with stale replies cannot stretch it. Default: no limit.
  void LimitTo(Deadline deadline);

  // Runs `command` (syncing first if needed, within the same `timeout`) and returns its "return"
  // value. Every exchange is bounded: one reply at most 48 MiB, all bytes read for it (stale
  // replies included) at most 96 MiB, else QmpProtocolError. Throws GuestAgentError, QmpTimeout
  // (the next call syncs again), QmpDisconnected, GuestAgentUnavailable (from the sync).
  // A reply of the wrong shape is MalformedJson (qmp/json_fields.h), an Error naming the field.
  nlohmann::json Execute(std::string_view command, const nlohmann::json& arguments = nullptr,
                         std::chrono::milliseconds timeout = kDefaultTimeout);

  void Ping(std::chrono::milliseconds timeout = kDefaultTimeout);
  AgentOsInfo OsInfo();
  // The guest's wall clock, in nanoseconds since the epoch.
  std::int64_t GetTime();
  // Sets the guest's wall clock (nanoseconds since the epoch).
  void SetTime(std::int64_t ns_since_epoch);

  // Runs a command in the guest and waits for it: its exit status and output. A command that
  // runs past request.timeout is killed in the guest and GuestExecTimeout is thrown; the agent
  // stays usable. A program that does not exist is a GuestAgentError.
  GuestExecResult Exec(const GuestExecRequest& request);

  // Whole files, as bytes. A file longer than `max_bytes` is a GuestAgentError (TooLarge); the
  // whole read, open to close, ends by `timeout`.
  static constexpr std::size_t kDefaultMaxFileBytes = 16u << 20;
  std::string ReadFile(const std::string& guest_path, std::size_t max_bytes = kDefaultMaxFileBytes,
                       std::chrono::milliseconds timeout = kDefaultTimeout);
  void WriteFile(const std::string& guest_path, std::string_view bytes);

 private:
  // Reads and decodes until a message arrives or `deadline` passes (nullopt then).
  std::optional<QmpMessage> NextMessage(Deadline deadline, std::string_view command);
  void SyncUntil(Deadline deadline, std::chrono::milliseconds timeout);
  Deadline DeadlineIn(std::chrono::milliseconds timeout) const;
  // Counts bytes read for the current exchange; throws past its bound.
  void CountExchangeBytes(std::size_t n, std::string_view command);
  // Asks guest-exec-status about `pid`; the reply in *status when given.
  bool Exited(std::int64_t pid, nlohmann::json* status);
  void Send(std::string_view command, const nlohmann::json& arguments, std::int64_t id,
            Deadline deadline);

  class ScopedLimit;

  std::unique_ptr<QmpTransport> transport_;
  QmpDecoder decoder_;
  std::int64_t next_id_;
  bool synced_ = false;
  Deadline limit_ = Deadline::max();
  std::uint64_t exchange_bytes_ = 0;
};

// Connects to an agent's socket (a VM's agent_socket()) and syncs within `timeout`. Throws
// GuestAgentUnavailable when `socket` is empty (the VM has no agent port) or nothing answers,
// QmpError when the socket cannot be reached.
std::unique_ptr<GuestAgent> ConnectGuestAgent(const std::string& socket,
                                              std::chrono::milliseconds timeout);

// The 8-bit exit status a shell or CI job should see for `result`, 0 only when it succeeded:
// 1-255 as the guest reported them, 128+N for signal N, and 255 for any other status (a
// Windows guest's 32-bit code, a negative one, 256), which folding to 8 bits could make 0.
int ExitStatusOf(const GuestExecResult& result);
// Whether ExitStatusOf had to stand in for a status that does not fit 8 bits.
bool ExitStatusFolded(const GuestExecResult& result);

// A guest-exec-status reply of a command that exited, read field by field (fuzzed:
// guest_agent_reply_fuzzer). Throws MalformedJson.
GuestExecResult ExecResultFromStatus(const nlohmann::json& reply);

// Base64 (RFC 4648, with padding), as the agent carries bytes.
std::string Base64Encode(std::string_view bytes);
// Throws Error on malformed input.
std::string Base64Decode(std::string_view text);

}  // namespace kvmrun

#endif  // KVMRUN_GUEST_AGENT_H_

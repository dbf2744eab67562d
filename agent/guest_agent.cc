#include "kvmrun/guest_agent.h"

#include <algorithm>
#include <array>
#include <limits>
#include <random>
#include <set>
#include <thread>

#include "qmp/json_fields.h"

namespace kvmrun {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// guest-sync-delimited puts this byte before its reply: it cannot occur in JSON text, so a
// reader that drops everything before it is in step whatever was in the stream.
constexpr char kSyncMarker = '\xff';
constexpr std::size_t kFileChunk = 1 << 20;
// qemu-ga keeps at most 16 MiB of a command's stdout and of its stderr; base64 makes each 4/3
// larger. One reply is never more than that and some framing.
constexpr std::size_t kMaxAgentMessageBytes = 48u << 20;
// What one exchange may read in all, stale replies and flooding included.
constexpr std::uint64_t kMaxExchangeBytes = 96u << 20;

std::string Ms(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

std::string DescribeCommand(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& arg : argv) out += (out.empty() ? "" : " ") + arg;
  return out.size() > 80 ? out.substr(0, 80) + "..." : out;
}

}  // namespace

GuestAgentError::GuestAgentError(std::string command, std::string error_class,
                                 std::string description)
    : Error("guest agent command '" + command + "' failed: " + error_class + ": " + description),
      command_(std::move(command)),
      error_class_(std::move(error_class)),
      description_(std::move(description)) {}

GuestAgent::GuestAgent(std::unique_ptr<QmpTransport> transport)
    : transport_(std::move(transport)),
      decoder_(kMaxAgentMessageBytes),
      // A random base: replies meant for an earlier client of the same port never match.
      next_id_(static_cast<std::int64_t>(std::random_device{}() & 0x3fffffff) << 20) {}

GuestAgent::~GuestAgent() { transport_->Shutdown(); }

void GuestAgent::Send(std::string_view command, const nlohmann::json& arguments, std::int64_t id,
                      Deadline deadline) {
  transport_->Write(EncodeQmpCommand(command, arguments, id), deadline);
}

void GuestAgent::Sync(std::chrono::milliseconds timeout) {
  SyncUntil(DeadlineIn(timeout), timeout);
}

void GuestAgent::SyncUntil(Deadline deadline, std::chrono::milliseconds timeout) {
  synced_ = false;
  exchange_bytes_ = 0;
  std::set<std::int64_t> sent;  // a reply to any of them says the agent is there now
  bool marker_seen = false;
  decoder_ = QmpDecoder(kMaxAgentMessageBytes);
  std::array<char, 65536> buffer;
  while (true) {
    const std::int64_t id = next_id_++;
    sent.insert(id);
    try {
      Send("guest-sync-delimited", {{"id", id}}, id, deadline);
    } catch (const QmpTimeout&) {
      break;  // nobody reads the port: reported below
    }
    // A new sync every second: an agent that starts later reads the port afresh.
    const Deadline resend = std::min(deadline, Deadline(Clock::now() + 1s));
    while (Clock::now() < resend) {
      std::size_t n = 0;
      try {
        n = transport_->Read(buffer.data(), buffer.size(), resend);
      } catch (const QmpTimeout&) {
        break;
      }
      if (n == 0) throw QmpDisconnected("the guest agent's port closed while syncing");
      CountExchangeBytes(n, "guest-sync-delimited");
      std::string_view bytes(buffer.data(), n);
      if (const std::size_t marker = bytes.rfind(kSyncMarker); marker != bytes.npos) {
        marker_seen = true;
        decoder_ = QmpDecoder(kMaxAgentMessageBytes);  // what came before the marker is stale
        bytes.remove_prefix(marker + 1);
      }
      if (!marker_seen) continue;
      decoder_.Feed(bytes);
      try {
        while (auto message = decoder_.Next()) {
          const nlohmann::json* value =
              message->kind == QmpMessageKind::kReturn ? &message->json["return"] : nullptr;
          if (value != nullptr && value->is_number_integer() &&
              sent.count(value->get<std::int64_t>()) != 0) {
            synced_ = true;
            return;
          }
        }
      } catch (const QmpProtocolError&) {
        marker_seen = false;  // garbage after a marker: wait for the next one
        decoder_ = QmpDecoder(kMaxAgentMessageBytes);
      }
    }
    if (Clock::now() >= deadline) break;
  }
  throw GuestAgentUnavailable(
      std::string("no guest agent answered on the virtio-serial port ") + kGuestAgentPort +
      " within " + Ms(timeout) +
      ": the guest needs qemu-guest-agent running (Debian and Ubuntu: the qemu-guest-agent "
      "package; Windows: the guest agent from virtio-win), or is still booting");
}

void GuestAgent::CountExchangeBytes(std::size_t n, std::string_view command) {
  exchange_bytes_ += n;
  if (exchange_bytes_ > kMaxExchangeBytes) {
    synced_ = false;
    throw QmpProtocolError("the guest agent sent more than " +
                           std::to_string(kMaxExchangeBytes >> 20) + " MiB while answering '" +
                           std::string(command) + "'");
  }
}

std::optional<QmpMessage> GuestAgent::NextMessage(Deadline deadline, std::string_view command) {
  std::array<char, 65536> buffer;
  while (true) {
    try {
      if (auto message = decoder_.Next()) return message;
    } catch (const QmpProtocolError&) {
      synced_ = false;
      throw;
    }
    std::size_t n = 0;
    try {
      n = transport_->Read(buffer.data(), buffer.size(), deadline);
    } catch (const QmpTimeout&) {
      return std::nullopt;
    }
    if (n == 0) {
      synced_ = false;
      throw QmpDisconnected("the guest agent's port closed");
    }
    CountExchangeBytes(n, command);
    // Markers of replies to extra syncs come late; they are not JSON.
    std::string bytes(buffer.data(), n);
    bytes.erase(std::remove(bytes.begin(), bytes.end(), kSyncMarker), bytes.end());
    decoder_.Feed(bytes);
  }
}

Deadline GuestAgent::DeadlineIn(std::chrono::milliseconds timeout) const {
  return std::min(limit_, Deadline(Clock::now() + timeout));
}

void GuestAgent::LimitTo(Deadline deadline) { limit_ = deadline; }

nlohmann::json GuestAgent::Execute(std::string_view command, const nlohmann::json& arguments,
                                   std::chrono::milliseconds timeout) {
  // One deadline for the whole exchange, the sync before it included.
  const auto start = Clock::now();
  const Deadline deadline = DeadlineIn(timeout);
  if (start >= deadline) {
    // A caller's overall limit is spent (a file read chunk by chunk, an exec's polling).
    throw QmpTimeout("the time given for the guest agent ran out before '" + std::string(command) +
                     "'");
  }
  if (!synced_) SyncUntil(deadline, timeout);
  exchange_bytes_ = 0;
  const std::int64_t id = next_id_++;
  try {
    Send(command, arguments, id, deadline);
  } catch (const Error&) {
    synced_ = false;
    throw;
  }
  while (auto message = NextMessage(deadline, command)) {
    if (!message->id().is_number_integer() || message->id().get<std::int64_t>() != id) {
      continue;  // a stale reply (an earlier sync's, a timed-out command's)
    }
    if (message->kind == QmpMessageKind::kReturn) return message->json["return"];
    if (message->kind == QmpMessageKind::kError) {
      const JsonFields error(message->json["error"], std::string(command) + "'s error reply");
      throw GuestAgentError(std::string(command), error.StringOr("class", "?"),
                            error.StringOr("desc", ""));
    }
  }
  synced_ = false;  // its reply may still come: the next call syncs past it
  throw QmpTimeout("the guest agent did not answer '" + std::string(command) + "' within " +
                   Ms(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - start)));
}

void GuestAgent::Ping(std::chrono::milliseconds timeout) {
  Execute("guest-ping", nullptr, timeout);
}

AgentOsInfo GuestAgent::OsInfo() {
  AgentOsInfo info;
  info.json = Execute("guest-get-osinfo");
  const JsonFields fields(info.json, "guest-get-osinfo's reply");
  info.id = fields.StringOr("id", "");
  info.pretty_name = fields.StringOr("pretty-name", "");
  info.kernel_release = fields.StringOr("kernel-release", "");
  info.machine = fields.StringOr("machine", "");
  return info;
}

std::int64_t GuestAgent::GetTime() {
  return AsInt(Execute("guest-get-time"), "guest-get-time's reply");
}

void GuestAgent::SetTime(std::int64_t ns_since_epoch) {
  Execute("guest-set-time", {{"time", ns_since_epoch}});
}

int ExitStatusOf(const GuestExecResult& result) {
  if (result.signal != 0) {
    return result.signal > 0 && result.signal < 128 ? 128 + result.signal : 255;
  }
  if (result.exit_code >= 0 && result.exit_code <= 255) return static_cast<int>(result.exit_code);
  return 255;
}

bool ExitStatusFolded(const GuestExecResult& result) {
  return result.signal == 0 && (result.exit_code < 0 || result.exit_code > 255);
}

GuestExecResult ExecResultFromStatus(const nlohmann::json& reply) {
  const JsonFields status(reply, "guest-exec-status's reply");
  GuestExecResult result;
  result.signal = static_cast<int>(status.IntOr("signal", 0, 0, 255));
  // Windows reports a 32-bit DWORD; kept whole, never folded into 8 bits here.
  result.exit_code = status.IntOr("exitcode", result.signal != 0 ? 0 : -1,
                                  std::numeric_limits<std::int64_t>::min(),
                                  std::numeric_limits<std::int64_t>::max());
  if (status.Has("out-data")) result.out = Base64Decode(status.String("out-data"));
  if (status.Has("err-data")) result.err = Base64Decode(status.String("err-data"));
  result.out_truncated = status.BoolOr("out-truncated", false);
  result.err_truncated = status.BoolOr("err-truncated", false);
  return result;
}

bool GuestAgent::Exited(std::int64_t pid, nlohmann::json* status) {
  nlohmann::json reply = Execute("guest-exec-status", {{"pid", pid}});
  const bool exited = JsonFields(reply, "guest-exec-status's reply").BoolOr("exited", false);
  if (status != nullptr) *status = std::move(reply);
  return exited;
}

// Narrows the agent's overall limit for one call (an exec, a file read) and restores it after.
class GuestAgent::ScopedLimit {
 public:
  ScopedLimit(GuestAgent& agent, Deadline deadline) : agent_(agent), saved_(agent.limit_) {
    agent_.limit_ = std::min(saved_, deadline);
  }
  ~ScopedLimit() { agent_.limit_ = saved_; }
  ScopedLimit(const ScopedLimit&) = delete;
  ScopedLimit& operator=(const ScopedLimit&) = delete;

 private:
  GuestAgent& agent_;
  Deadline saved_;
};

GuestExecResult GuestAgent::Exec(const GuestExecRequest& request) {
  if (request.argv.empty()) throw UsageError("argv", "the command to run is empty");
  const auto start = Clock::now();
  // Everything, the kill after a timeout included, ends within a few seconds of the timeout,
  // whatever the agent sends meanwhile.
  const ScopedLimit limit(*this, start + request.timeout + 5s);
  nlohmann::json arguments = {
      {"path", request.argv[0]},
      {"arg", std::vector<std::string>(request.argv.begin() + 1, request.argv.end())},
      {"capture-output", true}};
  if (!request.env.empty()) arguments["env"] = request.env;
  if (request.input) arguments["input-data"] = Base64Encode(*request.input);
  const nlohmann::json started = Execute("guest-exec", arguments);
  const std::int64_t pid = JsonFields(started, "guest-exec's reply").Int("pid");

  const auto deadline = std::min(limit_, start + request.timeout);
  auto pause = 1ms;  // a command like `true` is done within a few ms; a build, much later
  while (true) {
    nlohmann::json status;
    if (Exited(pid, &status)) {
      GuestExecResult result = ExecResultFromStatus(status);
      result.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
      return result;
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::min(
        pause,
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now() + 1ms)));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  // The agent cannot kill what it started; a kill it starts can (Linux guests).
  try {
    Execute("guest-exec", {{"path", "kill"}, {"arg", {"-KILL", std::to_string(pid)}}}, 2s);
    for (int i = 0; i < 50 && !Exited(pid, nullptr); ++i) std::this_thread::sleep_for(20ms);
  } catch (const Error&) {
    // The timeout is the error to report.
  }
  throw GuestExecTimeout(
      "'" + DescribeCommand(request.argv) + "' ran longer than " +
      Ms(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - start)) +
      " in the guest and was killed");
}

std::string GuestAgent::ReadFile(const std::string& guest_path, std::size_t max_bytes,
                                 std::chrono::milliseconds timeout) {
  // One deadline for the whole file: an agent that never says eof cannot keep kvmrun reading.
  const ScopedLimit limit(*this, Clock::now() + timeout);
  const std::string what = "guest-file-read of '" + guest_path + "'";
  const auto close = [&](std::int64_t handle) {
    try {
      Execute("guest-file-close", {{"handle", handle}}, 2s);
    } catch (const Error&) {
      // What went wrong before is the error to report.
    }
  };
  std::int64_t handle = -1;
  try {
    handle = AsInt(Execute("guest-file-open", {{"path", guest_path}, {"mode", "r"}}),
                   "guest-file-open's reply");
    std::string bytes;
    while (true) {
      const nlohmann::json reply =
          Execute("guest-file-read", {{"handle", handle}, {"count", kFileChunk}});
      const JsonFields chunk(reply, what);
      const std::int64_t count = chunk.IntOr("count", 0, 0, static_cast<std::int64_t>(kFileChunk));
      bytes += Base64Decode(chunk.StringOr("buf-b64", ""));
      if (bytes.size() > max_bytes) {
        throw GuestAgentError("guest-file-read", "TooLarge",
                              "'" + guest_path + "' is more than the " + std::to_string(max_bytes) +
                                  " bytes kvmrun reads");
      }
      if (chunk.BoolOr("eof", true) || count == 0) break;
    }
    close(handle);
    return bytes;
  } catch (...) {
    if (handle >= 0) close(handle);
    throw;
  }
}

void GuestAgent::WriteFile(const std::string& guest_path, std::string_view bytes) {
  const std::int64_t handle = AsInt(
      Execute("guest-file-open", {{"path", guest_path}, {"mode", "w"}}), "guest-file-open's reply");
  try {
    for (std::size_t at = 0; at < bytes.size(); at += kFileChunk) {
      Execute("guest-file-write",
              {{"handle", handle}, {"buf-b64", Base64Encode(bytes.substr(at, kFileChunk))}});
    }
  } catch (...) {
    Execute("guest-file-close", {{"handle", handle}});
    throw;
  }
  Execute("guest-file-close", {{"handle", handle}});
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16 |
                            static_cast<unsigned char>(bytes[i + 1]) << 8 |
                            static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < bytes.size()) {
    std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string Base64Decode(std::string_view text) {
  const auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t bits = 0;
  int count = 0;
  std::size_t padding = 0;
  for (char c : text) {
    if (c == '=') {
      ++padding;
      continue;
    }
    if (c == '\n' || c == '\r') continue;
    const int v = value(c);
    if (v < 0 || padding > 0) throw Error("malformed base64 from the guest agent");
    bits = bits << 6 | static_cast<std::uint32_t>(v);
    if (++count == 4) {
      out += static_cast<char>(bits >> 16);
      out += static_cast<char>(bits >> 8 & 0xff);
      out += static_cast<char>(bits & 0xff);
      bits = 0;
      count = 0;
    }
  }
  if (count == 1 || padding > 2) throw Error("malformed base64 from the guest agent");
  if (count == 2) out += static_cast<char>(bits >> 4);
  if (count == 3) {
    out += static_cast<char>(bits >> 10);
    out += static_cast<char>(bits >> 2 & 0xff);
  }
  return out;
}

std::unique_ptr<GuestAgent> ConnectGuestAgent(const std::string& socket,
                                              std::chrono::milliseconds timeout) {
  if (socket.empty()) {
    throw GuestAgentUnavailable("this VM has no guest agent port (it was started without one)");
  }
  auto agent = std::make_unique<GuestAgent>(ConnectQmpSocket(
      socket, std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(5))));
  agent->Sync(timeout);
  return agent;
}

}  // namespace kvmrun

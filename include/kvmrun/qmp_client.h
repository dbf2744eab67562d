// A QMP client: the handshake, commands correlated by id, and events.
//
// Construction performs the handshake (reads the greeting, sends qmp_capabilities). Then
// Execute() sends a command and returns its "return" value, or throws:
//   QmpError         QEMU answered with an error (class, description, command)
//   QmpTimeout       no reply before the timeout (a late reply is dropped when it comes)
//   QmpDisconnected  the connection ended; every call waiting at that moment fails too
//   QmpProtocolError the peer sent something that is not QMP; the connection is then closed
// Events that arrive between replies are queued (the newest kMaxQueuedEvents), handed to the
// event handler if one is set, and can be awaited with WaitForEvent().
//
// Threading contract: every method may be called from any thread, concurrently. There is no
// background thread; the threads that wait (in Execute or WaitForEvent) take turns reading
// the socket, and whichever reads delivers replies and events to all the others. The event
// handler runs on that reading thread, with no lock held, and must not call back into the
// client. What one read brings (replies and events) is published to waiters only after the
// handler has seen that read's events: a reply, or an event WaitForEvent returns, is never seen
// before the handler has seen it and every event that came before it. Destruction must not race
// with calls in flight.
#ifndef KVMRUN_QMP_CLIENT_H_
#define KVMRUN_QMP_CLIENT_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "kvmrun/qemu_version.h"
#include "kvmrun/qmp_codec.h"
#include "kvmrun/qmp_transport.h"

namespace kvmrun {

// QEMU answered a command with an error.
class QmpError : public Error {
 public:
  QmpError(std::string command, std::string error_class, std::string description);

  const std::string& command() const { return command_; }
  const std::string& error_class() const { return error_class_; }  // e.g. "GenericError"
  const std::string& description() const { return description_; }

 private:
  std::string command_;
  std::string error_class_;
  std::string description_;
};

struct QmpEvent {
  std::string name;      // e.g. "STOP"
  nlohmann::json data;   // the event's "data", or null
  double timestamp = 0;  // seconds since the epoch, as QEMU stamped it
  nlohmann::json json;   // the whole message
};

struct QmpGreeting {
  QemuVersion version;
  std::string package;  // e.g. "Debian 1:7.2+dfsg-7+deb12u18"
  nlohmann::json capabilities;
};

class QmpClient {
 public:
  using Milliseconds = std::chrono::milliseconds;
  static constexpr Milliseconds kDefaultTimeout{10000};
  static constexpr std::size_t kMaxQueuedEvents = 4096;

  // Handshakes over `transport` within `timeout`. Throws QmpTimeout ("no QMP greeting"),
  // QmpProtocolError or QmpDisconnected; the transport is shut down on failure.
  explicit QmpClient(std::unique_ptr<QmpTransport> transport,
                     Milliseconds timeout = kDefaultTimeout);
  ~QmpClient();
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  const QmpGreeting& greeting() const { return greeting_; }

  // Runs `command` and returns its "return" value. `arguments` may be null or an object.
  nlohmann::json Execute(std::string_view command, const nlohmann::json& arguments = nullptr,
                         Milliseconds timeout = kDefaultTimeout);

  // Execute, with a copy of the descriptor `fd` passed along (getfd, add-fd). Throws Error
  // when the transport cannot pass descriptors.
  nlohmann::json ExecuteWithFd(std::string_view command, const nlohmann::json& arguments, int fd,
                               Milliseconds timeout = kDefaultTimeout);

  // One command of a batch, and what came back for it.
  struct Call {
    std::string command;
    nlohmann::json arguments;  // null or an object
  };
  struct Result {
    bool ok = false;
    nlohmann::json value;                  // the "return" value when ok
    std::string error_class, description;  // when not
  };
  // Sends every command at once and waits for all their replies (QMP answers in order, so a
  // batch costs one round trip instead of one per command): what a QOM walk or a per-vCPU read
  // needs. A command's error is its Result, not an exception; the connection's failure or the
  // deadline throws as Execute does.
  std::vector<Result> ExecuteAll(const std::vector<Call>& calls,
                                 Milliseconds timeout = kDefaultTimeout);

  // Returns (and removes from the queue) the first queued or arriving event named `name`, or
  // of any name when `name` is empty. Throws QmpTimeout or QmpDisconnected.
  QmpEvent WaitForEvent(std::string_view name, Milliseconds timeout);

  // Removes and returns every queued event, oldest first.
  std::deque<QmpEvent> TakeEvents();

  // Called for every event as it arrives (in addition to queueing it). See the threading
  // contract above.
  void SetEventHandler(std::function<void(const QmpEvent&)> handler);

  // False once the connection has ended (EOF, protocol error or Close()) or a command could not
  // be sent whole (events QEMU sent before then can still be awaited).
  bool connected() const;

  // How many replies arrived that no command was waiting for: late or foreign ids, and the
  // further errors without an id that follow one bad input.
  std::uint64_t unmatched_replies() const;

  // Ends the connection; calls waiting in other threads fail with QmpDisconnected.
  void Close();

 private:
  struct Reply {
    bool ok = false;
    nlohmann::json value;  // the "return" value, or the "error" object
  };
  // What one read dispatched, held back from waiters until the handler has seen its events.
  struct Delivery {
    std::vector<QmpEvent> events;
    std::map<std::int64_t, Reply> replies;
  };

  // Reads and dispatches until `done()` holds (under mu_) or `deadline` passes. Errors read
  // "<activity>: <timeout_detail>" on timeout and "<activity>: <reason>" on disconnection.
  void Pump(std::unique_lock<std::mutex>& lock, Deadline deadline,
            const std::function<bool()>& done, const std::string& activity,
            const std::string& timeout_detail);
  void ReadOnce(std::unique_lock<std::mutex>& lock, Deadline deadline);
  nlohmann::json Run(std::string_view command, const nlohmann::json& arguments, int fd,
                     Milliseconds timeout);
  void Dispatch(QmpMessage message, Delivery& delivery);
  void Disconnect(std::string reason);  // with mu_ held
  void SendFailed(const std::string& reason);  // with mu_ held
  void CheckCanSend(const std::string& activity) const;  // with mu_ held
  [[noreturn]] void ThrowDisconnected(const std::string& activity) const;

  std::unique_ptr<QmpTransport> transport_;
  QmpGreeting greeting_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  QmpDecoder decoder_;
  bool reading_ = false;
  bool greeted_ = false;
  std::string disconnect_reason_;  // non-empty once disconnected
  bool protocol_error_ = false;    // disconnected because the peer spoke no QMP
  std::string send_failure_;       // non-empty once a command could not be sent whole
  std::int64_t next_id_ = 1;
  std::set<std::int64_t> waiting_;
  std::map<std::int64_t, Reply> replies_;
  std::deque<QmpEvent> events_;
  std::uint64_t unmatched_replies_ = 0;
  bool resyncing_ = false;  // after an error without an id, until a reply with one
  std::function<void(const QmpEvent&)> handler_;
  std::mutex write_mu_;
};

}  // namespace kvmrun

#endif  // KVMRUN_QMP_CLIENT_H_

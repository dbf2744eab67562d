// A scripted in-memory QMP peer for unit tests: the test queues what "QEMU" sends and sees what
// the client wrote. Thread-safe, so tests can drive a client from several threads.
#ifndef KVMRUN_TESTS_SUPPORT_FAKE_QMP_TRANSPORT_H_
#define KVMRUN_TESTS_SUPPORT_FAKE_QMP_TRANSPORT_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kvmrun/qmp_transport.h"

namespace kvmrun::testing {

inline constexpr char kGreeting72[] =
    R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2"}, "capabilities": ["oob"]}})"
    "\r\n";

// The server side. Each Send() is delivered by exactly one Read() (or split if the reader's
// buffer is smaller), so tests control read boundaries.
class FakeQmpPeer {
 public:
  // Called for each complete command the client writes; returns the chunks to send back.
  using Responder = std::function<std::vector<std::string>(const nlohmann::json& command)>;

  void Send(std::string bytes);
  void SendEof();
  void SetResponder(Responder responder);
  // Makes the next writes fail as if the peer had reset the connection.
  void FailWrites();

  std::vector<nlohmann::json> commands() const;  // every command written so far
  bool shut_down() const;

  // Transport side.
  void Write(std::string_view bytes);
  std::size_t Read(char* buffer, std::size_t size, Deadline deadline);
  void Shutdown();

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> chunks_;
  bool eof_ = false;
  bool shut_down_ = false;
  bool fail_writes_ = false;
  std::string partial_command_;
  std::vector<nlohmann::json> commands_;
  Responder responder_;
};

// A transport bound to `peer`.
std::unique_ptr<QmpTransport> FakeTransport(std::shared_ptr<FakeQmpPeer> peer);

// A responder that answers qmp_capabilities with {} and every command in `returns` with its
// value; anything else gets a CommandNotFound error.
FakeQmpPeer::Responder AnswerWith(std::map<std::string, nlohmann::json> returns);

// "{"return": value, "id": id}\r\n"
std::string ReturnMessage(const nlohmann::json& value, const nlohmann::json& id);

}  // namespace kvmrun::testing

#endif  // KVMRUN_TESTS_SUPPORT_FAKE_QMP_TRANSPORT_H_

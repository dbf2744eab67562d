#include "tests/support/fake_qmp_transport.h"

#include <cstring>
#include <map>

namespace kvmrun::testing {

void FakeQmpPeer::Send(std::string bytes) {
  std::lock_guard lock(mu_);
  chunks_.push_back(std::move(bytes));
  cv_.notify_all();
}

void FakeQmpPeer::SendEof() {
  std::lock_guard lock(mu_);
  eof_ = true;
  cv_.notify_all();
}

void FakeQmpPeer::SetResponder(Responder responder) {
  std::lock_guard lock(mu_);
  responder_ = std::move(responder);
}

void FakeQmpPeer::FailWrites() {
  std::lock_guard lock(mu_);
  fail_writes_ = true;
}

std::vector<nlohmann::json> FakeQmpPeer::commands() const {
  std::lock_guard lock(mu_);
  return commands_;
}

bool FakeQmpPeer::shut_down() const {
  std::lock_guard lock(mu_);
  return shut_down_;
}

void FakeQmpPeer::Write(std::string_view bytes) {
  std::unique_lock lock(mu_);
  if (fail_writes_ || shut_down_) throw QmpDisconnected("fake peer: connection reset");
  partial_command_.append(bytes);
  std::size_t newline;
  while ((newline = partial_command_.find('\n')) != std::string::npos) {
    nlohmann::json command = nlohmann::json::parse(partial_command_.substr(0, newline));
    partial_command_.erase(0, newline + 1);
    commands_.push_back(command);
    if (responder_) {
      for (std::string& chunk : responder_(command)) chunks_.push_back(std::move(chunk));
    }
  }
  cv_.notify_all();
}

std::size_t FakeQmpPeer::Read(char* buffer, std::size_t size, Deadline deadline) {
  std::unique_lock lock(mu_);
  while (chunks_.empty() && !eof_ && !shut_down_) {
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && chunks_.empty() && !eof_ &&
        !shut_down_) {
      throw QmpTimeout("fake peer: read timed out");
    }
  }
  if (shut_down_ || chunks_.empty()) return 0;
  std::string& chunk = chunks_.front();
  const std::size_t n = std::min(size, chunk.size());
  std::memcpy(buffer, chunk.data(), n);
  chunk.erase(0, n);
  if (chunk.empty()) chunks_.pop_front();
  return n;
}

void FakeQmpPeer::Shutdown() {
  std::lock_guard lock(mu_);
  shut_down_ = true;
  cv_.notify_all();
}

namespace {

class Transport : public QmpTransport {
 public:
  explicit Transport(std::shared_ptr<FakeQmpPeer> peer) : peer_(std::move(peer)) {}
  void Write(std::string_view bytes, Deadline) override { peer_->Write(bytes); }
  std::size_t Read(char* buffer, std::size_t size, Deadline deadline) override {
    return peer_->Read(buffer, size, deadline);
  }
  void Shutdown() override { peer_->Shutdown(); }

 private:
  std::shared_ptr<FakeQmpPeer> peer_;
};

}  // namespace

std::unique_ptr<QmpTransport> FakeTransport(std::shared_ptr<FakeQmpPeer> peer) {
  return std::make_unique<Transport>(std::move(peer));
}

std::string ReturnMessage(const nlohmann::json& value, const nlohmann::json& id) {
  return nlohmann::json{{"return", value}, {"id", id}}.dump() + "\r\n";
}

FakeQmpPeer::Responder AnswerWith(std::map<std::string, nlohmann::json> returns) {
  returns.emplace("qmp_capabilities", nlohmann::json::object());
  return [returns](const nlohmann::json& command) -> std::vector<std::string> {
    const auto it = returns.find(command.at("execute").get<std::string>());
    if (it == returns.end()) {
      return {nlohmann::json{{"error",
                              {{"class", "CommandNotFound"},
                               {"desc", "The command " + command["execute"].get<std::string>() +
                                            " has not been found"}}},
                             {"id", command["id"]}}
                  .dump() +
              "\r\n"};
    }
    return {ReturnMessage(it->second, command["id"])};
  };
}

}  // namespace kvmrun::testing

#include "tests/support/fake_qmp_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace kvmrun::testing {
namespace {

constexpr char kGreeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": "
    "\"fake\"}, \"capabilities\": []}}\r\n";

void SendAll(int fd, const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<std::size_t>(n);
  }
}

// Reads until a newline (one command); false on EOF or when `stop` fires.
bool ReadCommand(int fd, int stop, std::string& command) {
  command.clear();
  while (command.find('\n') == std::string::npos) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop, POLLIN, 0}};
    if (poll(fds, 2, -1) <= 0 || (fds[1].revents & POLLIN)) return false;
    char buffer[4096];
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) return false;
    command.append(buffer, static_cast<std::size_t>(n));
  }
  return true;
}

// The "id" member of a command, as raw JSON text.
std::string IdOf(const std::string& command) {
  const auto at = command.find("\"id\":");
  if (at == std::string::npos) return "null";
  const auto end = command.find_first_of(",}", at);
  return command.substr(at + 5, end - at - 5);
}

// A JSON value nested `depth` arrays deep.
std::string Nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

FakeQmpServer::FakeQmpServer(std::string path, FakeServerBehaviour behaviour)
    : path_(std::move(path)), behaviour_(behaviour) {
  listener_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listener_, 4) != 0 || pipe2(stop_, O_CLOEXEC) != 0) {
    throw std::runtime_error("fake QMP server: cannot listen on " + path_);
  }
  thread_ = std::thread([this] {
    while (true) {
      pollfd fds[2] = {{listener_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) <= 0 || (fds[1].revents & POLLIN)) return;
      const int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      Serve(client);
      close(client);
    }
  });
}

FakeQmpServer::~FakeQmpServer() {
  [[maybe_unused]] const ssize_t n = write(stop_[1], "x", 1);
  thread_.join();
  close(listener_);
  close(stop_[0]);
  close(stop_[1]);
  unlink(path_.c_str());
}

void FakeQmpServer::Serve(int client) {
  std::string command;
  if (behaviour_ == FakeServerBehaviour::kNoGreeting) {
    while (ReadCommand(client, stop_[0], command)) {
    }
    return;
  }
  if (behaviour_ == FakeServerBehaviour::kNestedGreeting) {
    SendAll(client, "{\"QMP\": {\"version\": " + Nested(100000) + "}}\r\n");
    while (ReadCommand(client, stop_[0], command)) {
    }
    return;
  }
  SendAll(client, kGreeting);
  if (!ReadCommand(client, stop_[0], command)) return;  // qmp_capabilities
  SendAll(client, "{\"return\": {}, \"id\": " + IdOf(command) + "}\r\n");
  while (ReadCommand(client, stop_[0], command)) {
    const std::string id = IdOf(command);
    switch (behaviour_) {
      case FakeServerBehaviour::kGarbage:
        SendAll(client, "\x01\x02 this is not JSON }{\r\n");
        return;
      case FakeServerBehaviour::kPartialThenClose:
        SendAll(client, "{\"return\": {\"status\": \"runn");
        return;
      case FakeServerBehaviour::kHugeReply:
        SendAll(client,
                "{\"return\": \"" + std::string(10u << 20, 'x') + "\", \"id\": " + id + "}\r\n");
        break;
      case FakeServerBehaviour::kNestedReply:
        SendAll(client, "{\"return\": " + Nested(100000) + ", \"id\": " + id + "}\r\n");
        break;
      case FakeServerBehaviour::kIdlessError:
        SendAll(client,
                "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, "
                "nesting too deep\"}}\r\n");
        break;
      case FakeServerBehaviour::kNeverAnswers:
      case FakeServerBehaviour::kNoGreeting:
      case FakeServerBehaviour::kNestedGreeting:
        break;
    }
  }
}

}  // namespace kvmrun::testing

#include "cli/console_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "kvmrun/error.h"

namespace kvmrun::cli {

using namespace std::chrono_literals;

bool SendAll(int fd, std::string_view bytes, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!bytes.empty()) {
    const ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return false;
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p = {fd, POLLOUT, 0};
    if (left <= 0ms || poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  }
  return true;
}

struct ConsoleServer::State {
  std::string path;
  std::function<void(std::string_view)> write;
  std::function<std::string()> recent;
  int listen_fd = -1;
  int wake_read = -1;
  int wake_write = -1;
  std::mutex mu;
  int client = -1;  // guarded by mu; only the thread opens and closes it
  std::thread thread;

  void Serve();
  void Accept();
  void DropClient() {
    std::lock_guard lock(mu);
    if (client >= 0) close(client);
    client = -1;
  }
};

ConsoleServer::ConsoleServer(std::string path, std::function<void(std::string_view)> write,
                             std::function<std::string()> recent)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.path = std::move(path);
  s.write = std::move(write);
  s.recent = std::move(recent);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (s.path.size() >= sizeof(address.sun_path)) {
    throw Error("the console socket path is too long: " + s.path);
  }
  std::memcpy(address.sun_path, s.path.c_str(), s.path.size() + 1);
  s.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s.listen_fd < 0 ||
      bind(s.listen_fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(s.listen_fd, 4) != 0) {
    const std::string why = std::strerror(errno);
    if (s.listen_fd >= 0) close(s.listen_fd);
    throw Error("cannot listen on the console socket '" + s.path + "': " + why);
  }
  int wake[2];
  if (pipe2(wake, O_CLOEXEC) != 0) {
    close(s.listen_fd);
    unlink(s.path.c_str());
    throw Error(std::string("pipe: ") + std::strerror(errno));
  }
  s.wake_read = wake[0];
  s.wake_write = wake[1];
  s.thread = std::thread([&s] { s.Serve(); });
}

ConsoleServer::~ConsoleServer() {
  State& s = *state_;
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = ::write(s.wake_write, &byte, 1);
  s.thread.join();
  s.DropClient();
  unlink(s.path.c_str());
  close(s.listen_fd);
  close(s.wake_read);
  close(s.wake_write);
}

void ConsoleServer::Forward(std::string_view bytes) {
  State& s = *state_;
  std::lock_guard lock(s.mu);
  // A client too slow or gone is cut off; the serving thread sees the hang-up and lets go.
  if (s.client >= 0 && !SendAll(s.client, bytes, 1s)) shutdown(s.client, SHUT_RDWR);
}

void ConsoleServer::State::Accept() {
  const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return;
  std::lock_guard lock(mu);
  if (client >= 0) {
    SendAll(fd, std::string(kConsoleGreetingBusy) + " another client is attached\n", 1s);
    close(fd);
    return;
  }
  std::string hello = std::string(kConsoleGreetingOk) + "\n";
  const std::string tail = recent();
  if (!tail.empty()) hello += tail;  // the prompt the guest is waiting at, and what led to it
  if (SendAll(fd, hello, 1s)) {
    client = fd;
  } else {
    close(fd);
  }
}

void ConsoleServer::State::Serve() {
  while (true) {
    int client_fd;
    {
      std::lock_guard lock(mu);
      client_fd = client;
    }
    pollfd fds[3] = {{wake_read, POLLIN, 0}, {listen_fd, POLLIN, 0}, {client_fd, POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) return;
    if (fds[1].revents & POLLIN) Accept();
    if (client_fd < 0 || fds[2].revents == 0) continue;
    char buffer[4096];
    const ssize_t n = read(client_fd, buffer, sizeof(buffer));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      DropClient();
      continue;
    }
    try {
      write(std::string_view(buffer, static_cast<std::size_t>(n)));
    } catch (const Error&) {
      DropClient();  // the VM has exited: the supervisor is ending too
    }
  }
}

}  // namespace kvmrun::cli

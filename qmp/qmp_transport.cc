#include "kvmrun/qmp_transport.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace kvmrun {
namespace {

using Clock = std::chrono::steady_clock;

std::string Errno(int err) { return std::strerror(err); }

// Milliseconds left before `deadline` for poll(): 0 when past, rounded up otherwise.
int PollTimeout(Deadline deadline) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(ms);
}

class SocketTransport : public QmpTransport {
 public:
  explicit SocketTransport(int fd) : fd_(fd) {
    fcntl(fd_, F_SETFD, FD_CLOEXEC);
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~SocketTransport() override { close(fd_); }

  // For a failed send (errno set): a peer that has gone is named as such, not as "Broken pipe".
  static QmpDisconnected WriteFailed() {
    if (errno == EPIPE || errno == ECONNRESET) {
      return QmpDisconnected("QEMU closed the QMP connection (it has exited, or is exiting)");
    }
    return QmpDisconnected("QMP write failed: " + Errno(errno));
  }

  void Write(std::string_view bytes, Deadline deadline) override {
    while (!bytes.empty()) {
      const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n > 0) {
        bytes.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN) throw WriteFailed();
      Wait(POLLOUT, deadline, "writing to QMP");
    }
  }

  void WriteWithFd(std::string_view bytes, int fd, Deadline deadline) override {
    // The descriptor rides on the first byte; the rest follows as ordinary data.
    char control[CMSG_SPACE(sizeof(int))] = {};
    iovec iov{const_cast<char*>(bytes.data()), 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    while (true) {
      const ssize_t n = sendmsg(fd_, &msg, MSG_NOSIGNAL);
      if (n == 1) break;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN) throw WriteFailed();
      Wait(POLLOUT, deadline, "writing to QMP");
    }
    Write(bytes.substr(1), deadline);
  }

  std::size_t Read(char* buffer, std::size_t size, Deadline deadline) override {
    while (true) {
      const ssize_t n = recv(fd_, buffer, size, 0);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) return 0;
      if (errno != EAGAIN) throw QmpDisconnected("QMP read failed: " + Errno(errno));
      Wait(POLLIN, deadline, "waiting for QMP data");
    }
  }

  void Shutdown() override { shutdown(fd_, SHUT_RDWR); }

 private:
  void Wait(short events, Deadline deadline, const char* what) {
    while (true) {
      pollfd p{fd_, events, 0};
      const int r = poll(&p, 1, PollTimeout(deadline));
      if (r > 0) return;  // ready, or an error/hangup the next call reports
      if (r < 0 && errno != EINTR) throw QmpDisconnected(std::string(what) + ": " + Errno(errno));
      if (r == 0 && Clock::now() >= deadline) throw QmpTimeout(std::string("timed out ") + what);
    }
  }

  int fd_;
};

}  // namespace

void QmpTransport::WriteWithFd(std::string_view, int, Deadline) {
  throw Error("this QMP connection cannot pass file descriptors");
}

std::unique_ptr<QmpTransport> ConnectQmpSocket(const std::string& path,
                                               std::chrono::milliseconds wait_for_server) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    throw UsageError("QMP socket path '" + path + "' is " + std::to_string(path.size()) +
                     " bytes; a Unix socket path must be 1 to " +
                     std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  const Deadline deadline = Clock::now() + wait_for_server;
  while (true) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw QmpDisconnected("cannot create a socket: " + Errno(errno));
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
      return std::make_unique<SocketTransport>(fd);
    }
    const int err = errno;
    close(fd);
    const bool server_not_ready = err == ENOENT || err == ECONNREFUSED || err == EAGAIN;
    if (!server_not_ready || Clock::now() >= deadline) {
      throw QmpDisconnected("cannot connect to QMP socket " + path + ": " + Errno(err));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::unique_ptr<QmpTransport> AdoptQmpSocket(int fd) {
  return std::make_unique<SocketTransport>(fd);
}

}  // namespace kvmrun

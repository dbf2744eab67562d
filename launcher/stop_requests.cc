#include "kvmrun/stop_requests.h"

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "io/errno_text.h"

namespace kvmrun {
namespace {

void Watch(int epoll_fd, int fd) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fd;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
    throw Error("cannot watch a stop descriptor: " + Errno());
  }
}

}  // namespace

StopRequests::StopRequests() {
  poll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  // A semaphore: each read takes one request, and the descriptor stays readable while any is
  // left.
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
  if (poll_fd_ < 0 || event_fd_ < 0) {
    const std::string why = Errno();
    if (poll_fd_ >= 0) close(poll_fd_);
    if (event_fd_ >= 0) close(event_fd_);
    throw Error("cannot create the stop descriptors: " + why);
  }
  Watch(poll_fd_, event_fd_);
}

std::shared_ptr<StopRequests> StopRequests::ForSignals(std::initializer_list<int> signals) {
  auto stop = std::make_shared<StopRequests>();
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  stop->signal_fd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (stop->signal_fd_ < 0) throw Error("cannot create a signalfd: " + Errno());
  Watch(stop->poll_fd_, stop->signal_fd_);
  return stop;
}

StopRequests::~StopRequests() {
  for (int fd : {poll_fd_, event_fd_, signal_fd_}) {
    if (fd >= 0) close(fd);
  }
}

void StopRequests::Request(const std::string& reason) {
  std::lock_guard lock(mu_);
  queued_.push_back(reason);
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = write(event_fd_, &one, sizeof(one));
}

bool StopRequests::Pending() const {
  pollfd p{poll_fd_, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

std::optional<std::string> StopRequests::Take() {
  if (signal_fd_ >= 0) {
    signalfd_siginfo info{};
    if (read(signal_fd_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      const char* name = sigabbrev_np(static_cast<int>(info.ssi_signo));
      return std::string("SIG") + (name != nullptr ? name : std::to_string(info.ssi_signo));
    }
  }
  std::lock_guard lock(mu_);
  std::uint64_t count = 0;
  if (queued_.empty() || read(event_fd_, &count, sizeof(count)) != sizeof(count)) {
    return std::nullopt;
  }
  std::string reason = std::move(queued_.front());
  queued_.pop_front();
  return reason;
}

void ThrowIfStopRequested(StopRequests* stop, const std::string& during) {
  if (stop == nullptr || !stop->Pending()) return;
  if (auto reason = stop->Take()) throw Interrupted(*reason, during);
}

bool WaitForFd(int fd, short events, std::chrono::milliseconds timeout, StopRequests* stop,
               const std::string& during) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  while (true) {
    ThrowIfStopRequested(stop, during);
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() < 0) return false;
    pollfd fds[2] = {{fd, events, 0}, {stop != nullptr ? stop->fd() : -1, POLLIN, 0}};
    const int ready =
        poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 1'000'000'000)));
    if (ready < 0 && errno != EINTR) return false;
    if (ready > 0 && fds[0].revents != 0) return true;
    if (ready == 0 && Clock::now() >= deadline) return false;
  }
}

}  // namespace kvmrun

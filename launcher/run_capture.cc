#include "launcher/run_capture.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "io/unique_fd.h"
#include "kvmrun/error.h"

namespace kvmrun {

CapturedRun RunAndCapture(ProcessRunner& runner, SpawnRequest request,
                          std::chrono::milliseconds timeout, std::size_t max_bytes,
                          StopRequests* stop) {
  auto [out_read, out_write] = MakePipe();
  auto [err_read, err_write] = MakePipe();
  request.stdout_fd = out_write.get();
  request.stderr_fd = err_write.get();
  std::unique_ptr<Process> child = runner.Spawn(request);
  out_write.Reset();
  err_write.Reset();

  CapturedRun run;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[3] = {{out_read.get(), POLLIN, 0},
                   {err_read.get(), POLLIN, 0},
                   {stop != nullptr ? stop->fd() : -1, POLLIN, 0}};
  std::string* sinks[2] = {&run.out, &run.err};
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero()) {
      run.timed_out = true;
      child->Signal(SIGKILL);
      break;
    }
    if (poll(fds, 3, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    if (fds[2].revents & POLLIN) {
      child->Signal(SIGKILL);
      child->Wait(std::chrono::seconds(5));
      ThrowIfStopRequested(stop, "while running " + request.executable);
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buffer[65536];
      const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        if (sinks[i]->size() < max_bytes) sinks[i]->append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
      }
    }
  }
  run.status = child->Wait(std::chrono::seconds(5)).value_or(ExitStatus{});
  return run;
}

}  // namespace kvmrun

// Requests to stop what kvmrun is doing, from signals or from code, as one descriptor that a
// wait can poll next to the thing it waits for.
//
//   auto stop = kvmrun::StopRequests::ForSignals({SIGINT, SIGTERM});  // before any thread
//   options.stop = stop;                       // Vm::Start gives up when one arrives
//   RunUntilExit(*vm, {.stop = stop.get()});   // the ladder; a second request cuts it short
//
// A request is pending until someone Take()s it; Pending() only looks. Signals are blocked in
// the thread that calls ForSignals (and so in the threads it starts later) and read through a
// signalfd, so they arrive as requests instead of interrupting: the library decides, at the
// next point where it waits, how to stop cleanly.
#ifndef KVMRUN_STOP_REQUESTS_H_
#define KVMRUN_STOP_REQUESTS_H_

#include <chrono>
#include <deque>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "kvmrun/error.h"

namespace kvmrun {

// A wait gave up because a stop was requested; what() says which ("SIGINT", or the reason
// given to Request). Whatever the interrupted call had started is torn down first.
class Interrupted : public Error {
 public:
  explicit Interrupted(const std::string& reason, const std::string& during = "")
      : Error(during.empty() ? "interrupted by " + reason
                             : "interrupted by " + reason + " " + during),
        reason_(reason) {}
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

class StopRequests {
 public:
  // Only requests made with Request().
  StopRequests();
  // Also each of `signals` that arrives, named "SIGINT", "SIGTERM"... Blocks them in the
  // calling thread. Throws Error when the descriptors cannot be made.
  static std::shared_ptr<StopRequests> ForSignals(std::initializer_list<int> signals);
  ~StopRequests();
  StopRequests(const StopRequests&) = delete;
  StopRequests& operator=(const StopRequests&) = delete;

  // Adds a request. Any thread; not async-signal-safe.
  void Request(const std::string& reason);

  // Readable (POLLIN) while a request is pending. Never read it: use Take().
  int fd() const { return poll_fd_; }
  bool Pending() const;
  // Removes and returns the oldest pending request (signals first), or nullopt.
  std::optional<std::string> Take();

 private:
  int poll_fd_ = -1;    // an epoll set of the two below
  int event_fd_ = -1;   // counts the queued code requests
  int signal_fd_ = -1;  // -1 without signals
  std::mutex mu_;
  std::deque<std::string> queued_;
};

// Throws Interrupted (taking the request) when a stop is pending; `stop` may be null.
// `during` completes the message: "while probing QEMU".
void ThrowIfStopRequested(StopRequests* stop, const std::string& during);

// Waits until `fd` is ready for `events` (POLLIN, POLLOUT; also on error or hang-up) or
// `timeout` passes, then returns whether it is ready. Throws Interrupted when a stop is
// requested first.
bool WaitForFd(int fd, short events, std::chrono::milliseconds timeout, StopRequests* stop,
               const std::string& during);

}  // namespace kvmrun

#endif  // KVMRUN_STOP_REQUESTS_H_

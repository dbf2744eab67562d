// Runs a short-lived child through the process seam and collects what it prints.
#ifndef KVMRUN_LAUNCHER_RUN_CAPTURE_H_
#define KVMRUN_LAUNCHER_RUN_CAPTURE_H_

#include <chrono>
#include <string>

#include "kvmrun/process.h"
#include "kvmrun/stop_requests.h"

namespace kvmrun {

struct CapturedRun {
  ExitStatus status;
  std::string out;
  std::string err;
  bool timed_out = false;  // killed at the deadline
};

// Spawns `request` with stdout and stderr on pipes, reads both (up to `max_bytes` each) until
// the child exits or `timeout` passes (then kills it). A stop request kills it too and throws
// Interrupted.
CapturedRun RunAndCapture(ProcessRunner& runner, SpawnRequest request,
                          std::chrono::milliseconds timeout, std::size_t max_bytes = 1 << 20,
                          StopRequests* stop = nullptr);

}  // namespace kvmrun

#endif  // KVMRUN_LAUNCHER_RUN_CAPTURE_H_

// swtpm, the TPM 2.0 emulator behind a VM's TPM (Debian's package swtpm): one process per VM,
// started before QEMU and owned by the same Vm. QEMU talks to it over a control socket
// (-tpmdev emulator); --terminate makes it exit when QEMU closes that connection, and the
// Vm kills it when it has not (QEMU never started, or hung), so no swtpm outlives its VM.
#ifndef KVMRUN_LAUNCHER_SWTPM_H_
#define KVMRUN_LAUNCHER_SWTPM_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "kvmrun/process.h"
#include "kvmrun/stop_requests.h"

namespace kvmrun {

struct SwtpmPlan {
  std::string state_dir;  // the TPM's persistent state (created 0700 when absent)
  std::string socket;     // the control socket QEMU connects to
  std::string log;        // swtpm's log file, read back when it fails
};

// swtpm's argv, argv[0] included.
std::vector<std::string> SwtpmArgv(const std::string& swtpm, const SwtpmPlan& plan);

// Starts swtpm and waits up to `timeout` for its control socket. UsageError when swtpm is
// not installed; VmError (with its log's tail) when it exits or never listens.
std::unique_ptr<Process> StartSwtpm(ProcessRunner& runner, const SwtpmPlan& plan,
                                    StopRequests* stop, std::chrono::milliseconds timeout);

}  // namespace kvmrun

#endif  // KVMRUN_LAUNCHER_SWTPM_H_

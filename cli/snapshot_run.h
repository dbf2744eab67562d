// The snapshot steps of `kvmrun run`: save at a console line, resync after a restore.
#ifndef KVMRUN_CLI_SNAPSHOT_RUN_H_
#define KVMRUN_CLI_SNAPSHOT_RUN_H_

#include <chrono>
#include <string>

#include "kvmrun/console.h"
#include "kvmrun/stop_requests.h"
#include "kvmrun/vm.h"

namespace kvmrun::cli {

// --snapshot-at REGEX --save FILE: waits (up to `timeout`, or a stop request) for a console
// line matching `pattern`, saves the VM to `file` and quits it. Prints what was saved (JSON
// on stdout with `json`). Throws VmError when no line matched; nothing is saved then.
int SaveAtConsolePattern(Vm& machine, const ConsolePattern& pattern, const std::string& file,
                         std::chrono::milliseconds timeout, StopRequests& stop, bool json);

// After a restore: sets the guest's clock (as old as the snapshot) through the agent, waiting
// up to `agent_wait` for it in one-second attempts, so that a pending stop request ends the
// wait within a second (and stays pending for the run loop); a wait past 3 s says what it
// waits for. Returns the line to print: what was restored and the offset before and after, or
// why the clock was not set. Never throws for the guest's sake.
std::string ResyncAfterRestore(Vm& machine, std::chrono::milliseconds agent_wait,
                               StopRequests* stop);

}  // namespace kvmrun::cli

#endif  // KVMRUN_CLI_SNAPSHOT_RUN_H_

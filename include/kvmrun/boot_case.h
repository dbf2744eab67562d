// Boot cases for CI: boot a guest, wait for a console pattern (or a failure pattern, a kernel
// panic, or QEMU exiting), power off, report. One case or many in parallel; junit.h writes
// the results as JUnit XML.
//
//   kvmrun::BootCase c;
//   c.name = "smoke";
//   c.spec.kernel = "bzImage";
//   c.spec.append = "console=ttyS0 panic=-1";
//   c.expect = "login:";
//   kvmrun::BootCaseResult r = kvmrun::RunBootCase(c, {});
//
// Timeouts are stated for KVM; under TCG they are multiplied by BootTestOptions::tcg_factor,
// because an emulated guest boots 10-50x slower.
#ifndef KVMRUN_BOOT_CASE_H_
#define KVMRUN_BOOT_CASE_H_

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/stop_requests.h"
#include "kvmrun/vm.h"

namespace kvmrun {

struct BootCase {
  std::string name = "boot";
  VmSpec spec;                    // no_reboot is forced on: a reboot or panic ends the case
  std::string expect;             // RE2 regex (console.h), matched against each console line
  std::vector<std::string> fail;  // regexes that fail the case when they match first
  std::chrono::milliseconds timeout{60000};  // under KVM, for the whole case
  // Commands run in the guest through its agent, in order, once `expect` has matched (the
  // guest needs qemu-guest-agent): the first that does not exit 0 fails the case. Their
  // output is appended to the case's console, headed "--- run: CMD (exit N) ---".
  std::vector<std::vector<std::string>> run;
  // With spec.restore_from: what the guest printed on its console before the snapshot was
  // saved. The patterns are looked for in it first, line by line, as if the restored guest
  // printed it again; it heads the case's console.
  std::string console_before;
};

// Always a failure, whatever the case says: the guest kernel panicked.
inline constexpr char kKernelPanicPattern[] = "Kernel panic - not syncing";

enum class BootOutcome {
  kPassed,
  kFailurePattern,
  kPanic,
  kTimeout,
  kQemuExited,
  kCommandFailed,  // a run step exited non-zero, was killed, or timed out
  kError
};
std::string_view ToString(BootOutcome outcome);

// A run step as it ended. Its output is also in the case's console; here it is kept apart,
// the last kMaxStepOutputBytes of each stream.
struct BootStepResult {
  std::vector<std::string> argv;
  bool ran = false;   // the agent ran it to its end (else `error` says why not)
  int exit_code = 0;  // with ran: the exit status (0..255), unless a signal ended it
  int signal = 0;     // with ran: the signal that ended it, or 0
  std::string out;
  std::string err;
  std::string error;  // why it did not run to its end: timed out, no such program, no agent

  bool passed() const { return ran && signal == 0 && exit_code == 0; }
  std::string status() const;   // "exit 0", "killed by signal 9", or the error
  std::string command() const;  // argv joined by spaces, for a person
};
inline constexpr std::size_t kMaxStepOutputBytes = 64 * 1024;

struct BootCaseResult {
  std::string name;
  BootOutcome outcome = BootOutcome::kError;
  std::string message;       // one line: what happened
  std::string matched_line;  // the console line that decided it, if any
  std::string console;       // the whole console (the last 4 MiB of it)
  Accel accel = Accel::kTcg;
  std::chrono::milliseconds timeout{0};  // as applied (after the TCG factor)
  std::chrono::milliseconds elapsed{0};
  std::vector<BootStepResult> steps;  // the run steps that started, in order

  bool passed() const { return outcome == BootOutcome::kPassed; }
};

struct BootTestOptions {
  double tcg_factor = 10;
  // Runner, cache and runtime directories, notices; on_console and console_log are set per
  // case by the callbacks below.
  VmOptions vm;
  // Console bytes of case `name`, as they arrive (on that VM's I/O thread).
  std::function<void(const std::string& name, std::string_view bytes)> on_console;
  // Called once per case when it ends (from the thread that ran it).
  std::function<void(const BootCaseResult&)> on_result;
  // While a request is pending (it is never taken here), running cases end as errors
  // ("interrupted") with their VMs stopped, and no further case starts.
  StopRequests* stop = nullptr;
};

// A suite as JSON: an array of objects, one per case, each field overriding `defaults`, or a
// matrix of them (boot_matrix.h, ExpandBootMatrix):
// name, os, qemu (a binary), firmware, kernel, initrd, append, disk (an array of
// "FILE[,format=F]", writes discarded),
// expect, fail (an array), run (an array of steps: each an argv array, or a string for the
// guest's sh -c), timeout (seconds), memory ("512M"). A case without a name is
// "case-N". Relative paths the JSON gives (kernel, initrd, disk, a qemu with a '/') are
// relative to `base_dir`, the cases file's directory (none: as given); the defaults' paths are
// left as they are. Throws UsageError naming the case (place and name) and what is wrong with
// it; the cases are not validated further (ValidateBootCase, ValidateBootCaseNames).
std::vector<BootCase> BootCasesFromJson(const nlohmann::json& json, const BootCase& defaults,
                                        const std::string& base_dir = "");

// Throws UsageError for a case that cannot run: no pattern, an invalid regex, nothing to boot,
// a timeout that is not positive, or a spec ValidateVmSpec rejects.
void ValidateBootCase(const BootCase& boot_case);

// Throws UsageError unless every case has a non-empty name of at most 200 bytes, different
// from the others' (they key reports and log files).
void ValidateBootCaseNames(const std::vector<BootCase>& cases);

// A file name for case `name` that stays inside its directory: letters, digits, '.', '_' and
// '-' are kept, anything else ('/', "..", spaces, control bytes) becomes '_', no leading '.',
// and a name that had to change gets a hash of the original so that two names never share a
// file. At most 120 bytes, without extension.
std::string BootCaseFileName(std::string_view name);

// Runs one case to its end. UsageError (a bad case) propagates; every other failure is the
// case's result.
BootCaseResult RunBootCase(const BootCase& boot_case, const BootTestOptions& options);

// Throws UsageError unless every case boots the VM the first one boots (the fields a cases
// file can set: os, qemu, firmware, kernel, initrd, append, disks, memory), naming the first
// case and field that differ: one saved VM can only be restored by cases that boot it, so a
// suite whose cases differ there is refused before anything boots.
void ValidateOneVmForSuite(const std::vector<BootCase>& cases);

// A booted guest saved for the cases of a suite to restore (boot-test's snapshot mode).
struct BootSnapshot {
  std::string file;
  std::string console;  // what the guest printed until it was paused for the save
  std::string line;     // the line it was saved at
  // The disks a restore must be given: a case's disks whose writes it discards are replaced
  // by qcow2 overlays beside `file` (qemu-img), which the saved VM wrote to.
  std::vector<DiskSpec> disks;
  std::chrono::milliseconds boot{0};  // from the start to the line
  std::chrono::milliseconds save{0};
};
// Boots `boot` (its spec, no_reboot forced on as for every case, disks as in
// BootSnapshot::disks), waits up to its timeout
// (times the TCG factor) for a console line matching `pattern`, saves the VM to `file` and
// stops it. Throws UsageError for a bad pattern or spec, Error when the line never came, the
// guest failed first or the save failed (nothing is left at `file` then).
BootSnapshot SaveBootSnapshot(const BootCase& boot, const std::string& pattern,
                              const std::string& file, const BootTestOptions& options);

// Throws UsageError unless jobs is 1 to 256 and options.tcg_factor 1 to 1000.
void ValidateBootTestOptions(int jobs, const BootTestOptions& options);

// Runs the cases on `jobs` threads, each VM owned by the thread that started it. Results come
// back in the cases' order; a case with bad input becomes an error result. Throws what
// ValidateBootTestOptions throws, before anything runs.
std::vector<BootCaseResult> RunBootCases(const std::vector<BootCase>& cases, int jobs,
                                         const BootTestOptions& options);

}  // namespace kvmrun

#endif  // KVMRUN_BOOT_CASE_H_

// Pieces every `kvmrun` subcommand shares: option parsing that turns every mistake into a
// UsageError (exit 2), the clock override options, and the exit codes.
#ifndef KVMRUN_CLI_CLI_COMMON_H_
#define KVMRUN_CLI_CLI_COMMON_H_

#include <boost/program_options.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/clock_policy.h"
#include "kvmrun/error.h"
#include "kvmrun/vm_registry.h"

namespace kvmrun::cli {

namespace po = boost::program_options;

enum ExitCode {
  kExitOk = 0,
  kExitFailure = 1,   // VM, QEMU or guest failure
  kExitUsage = 2,     // bad usage or input
  kExitMismatch = 3,  // clock verification mismatch
  // `kvmrun run` only: how a VM that was stopped (not powered off by its guest) ended.
  kExitStoppedCleanly = 4,  // stopped on request; the guest powered off when asked
  kExitStoppedForced = 5,   // stopped on request; the guest did not, QEMU was quit or killed
  kExitTimeout = 6,         // stopped by --timeout (either way)
};

// The arguments after the subcommand name.
using Args = std::vector<std::string>;

// Options renamed so that one concept has one name in every subcommand: each old name in
// `args` (as --old or --old=value, before a "--") becomes the new one, so old command lines
// keep working and giving both is Boost's "multiple occurrences" error. Not shown in --help.
Args WithNewOptionNames(
    Args args, std::initializer_list<std::pair<std::string_view, std::string_view>> renamed);

// Parses `args` against `options` (and `positional`, if given) and notifies the variables.
// Unknown options, missing values and bad types throw UsageError with the message.
po::variables_map Parse(const Args& args, const po::options_description& options,
                        const po::positional_options_description* positional = nullptr);

// The flag that sets a library field: "memory_mib" -> "--memory", "qmp_socket" ->
// "--qmp-socket". The library names fields in its own terms and never a flag.
std::string FlagFor(std::string_view field);
// A UsageError in the CLI's words: "--memory: invalid value ..." for a field's error.
std::string CliMessage(const UsageError& error);

// Inside a catch: writes what escaped a subcommand to `out`, each line after `prefix`, with
// the context errors carry (the QEMU command, its stderr, the console, the clock report), and
// returns the exit code for it. Rethrows what is not a kvmrun::Error.
int ReportCurrentException(const std::string& prefix, std::ostream& out);

// The subcommand's --help text: usage line, summary, options. The options that hold the
// positional words (`positional`: NAME, CMD, ACTION...) are not listed: the usage line shows
// them as words.
std::string HelpText(const std::string& usage, const std::string& summary,
                     const po::options_description& options,
                     const po::positional_options_description* positional = nullptr);

// Adds --rtc-base, --rtc-policy, --pit-policy, --hpet, --hv-time, --kvmclock.
void AddOverrideOptions(po::options_description& options);
// The validated overrides; throws UsageError naming the option, the bad value and the valid ones.
ClockOverrides GetOverrides(const po::variables_map& vm);

// A duration given in seconds (greater than 0, at most about 115 days) as milliseconds; `what`
// names the option or field in the UsageError thrown otherwise.
std::chrono::milliseconds PositiveSeconds(double seconds, const std::string& what);
// Seconds that may be 0 (--grace 0: no time for the guest).
std::chrono::milliseconds NonNegativeSeconds(double seconds, const std::string& what);

// The --wait option's value (seconds, >= 0) as a duration; throws UsageError when negative.
std::chrono::milliseconds WaitOption(const po::variables_map& vm);

// A QMP socket given as a path, or as the name of a running named VM (a word without '/').
std::string QmpSocketOf(const std::string& path_or_name);

// A running VM given by name (a word without '/') or by its QMP socket's path. A named VM's
// registry entry also gives its agent socket and OS; a path gives neither.
struct VmTarget {
  std::string name;  // empty for a path
  std::string qmp_socket;
  std::string agent_socket;
  std::string os;
  // The policy the named VM was started with (its OS and every override), from its record.
  std::optional<ClockPolicy> policy;
};
VmTarget TargetOf(const std::string& path_or_name);
// The guest agent socket of the running VM `name`: UsageError when no VM is called that, Error
// when it was started without an agent port.
std::string AgentSocketOf(const std::string& name);

// The NAME a subcommand takes (its positional "name"); UsageError when it is missing.
std::string RequiredName(const po::variables_map& vm);
// The live named VM `name`; UsageError ("no running VM called ...") when there is none.
NamedVm RunningVm(const std::string& name);

// "1.25 s" (two decimals below 10 s, one above).
std::string SecondsText(std::chrono::milliseconds ms);

// Writes `line` and a newline to stderr in one write(2), for what kvmrun says while a guest's
// console shares the terminal: the guest's bytes can come before or after it, never inside.
void StderrLine(std::string_view line);

// --max-offset and --agent-wait (its default `agent_wait_s`): the guest-clock checks.
void AddGuestClockOptions(po::options_description& options, double agent_wait_s);
std::chrono::milliseconds MaxOffsetOption(const po::variables_map& vm);
std::chrono::milliseconds AgentWaitOption(const po::variables_map& vm);

// Now in UTC, ISO 8601 ("2026-11-30T12:00:00"), and this host's name: for reports.
std::string UtcTimestamp();
std::string HostName();

// Writes `text` to `path` (created or truncated); throws Error naming `what` and the file when
// it cannot.
void WriteTextFile(const std::string& path, const std::string& text, const std::string& what);

// kvmrun's version: "0.1.0"; "0.1.0 (git v0.1.0-3-gabcdef0)" with the commit built where the
// build had git (doctor); "kvmrun 0.1.0 (git ...)" (kvmrun --version).
std::string VersionNumber();
std::string VersionWithCommit();
std::string VersionText();

// Throws UsageError when more than one of the named options was given.
void RejectConflicts(const po::variables_map& vm, const std::vector<std::string>& names);

}  // namespace kvmrun::cli

#endif  // KVMRUN_CLI_CLI_COMMON_H_

// The subcommands of `kvmrun`. Each takes the arguments after its name, prints what it has to
// say, and returns an exit code (cli_common.h); UsageError and Error escape to main().
#ifndef KVMRUN_CLI_COMMANDS_H_
#define KVMRUN_CLI_COMMANDS_H_

#include "cli/cli_common.h"
#include "kvmrun/boot_case.h"
#include "kvmrun/vm_spec.h"

namespace kvmrun::cli {

int PolicyCommand(const Args& args);
int QmpCommand(const Args& args);
int RunCommand(const Args& args);
int DoctorCommand(const Args& args);
int VerifyCommand(const Args& args);
int BootTestCommand(const Args& args);
int TimecheckCommand(const Args& args);
int PsCommand(const Args& args);
int StopCommand(const Args& args);
int ExecCommand(const Args& args);
int SyncCommand(const Args& args);
int SnapshotCommand(const Args& args);
int ConsoleCommand(const Args& args);
int ReportCommand(const Args& args);

// Parse-only entry points, driven by the CLI fuzzer: a subcommand's arguments turned into the
// library's types, with every check that needs no QEMU. Throw UsageError on bad input.
VmSpec ParseRunArgs(const Args& args);
std::vector<BootCase> ParseBootTestArgs(const Args& args);

}  // namespace kvmrun::cli

#endif  // KVMRUN_CLI_COMMANDS_H_

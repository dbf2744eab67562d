// VM files: a VM kept in a file next to the code it tests, read by the subcommands that start
// one (run, boot-test, timecheck). The file's keys are the subcommand's own long options
// (`memory = "2G"` is `--memory 2G`), so the file and the command line share one vocabulary,
// one set of checks and one --help; options given on the command line win over the file's.
//   TOML (toml++) or JSON (nlohmann), chosen by the name: .json is JSON, anything else TOML.
//   Strings, integers and floats are an option's value; an array is a repeatable option's
//   values; true/false set a flag (`net = true`), or its "no-" form (`agent = false` is
//   --no-agent), or an on|off option (`hpet = false`). Disks and shares may be tables:
//   {file = "root.qcow2", bus = "sata"}, {dir = "src", tag = "src", ro = true}.
//   Unknown keys, values of the wrong type and values the option refuses are usage errors that
//   name the file, the line and the key: "vm.toml:7: memory: invalid value '4Q' ...".
//   Relative paths (kernel, initrd, disks, shares, ...) are relative to the file.
// docs/vm-files.md is the schema's documentation, with an example per use.
#ifndef KVMRUN_CLI_VM_FILE_H_
#define KVMRUN_CLI_VM_FILE_H_

#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "cli/cli_common.h"

namespace kvmrun::cli {

// One key of a VM file, as the option it sets and the tokens it gives that option.
struct VmFileEntry {
  std::string key;     // as written in the file
  std::string option;  // the long option it sets (the key, or "no-KEY" for KEY = false)
  int line = 0;        // 1-based; 0 where not known
  std::vector<std::string> tokens;
};

struct VmFile {
  std::string path;  // as given; empty when the command line named no file
  // In file order. After ParseVmCommandLine: only those the command line did not override.
  std::vector<VmFileEntry> entries;
};

// Adds the VM-file options a subcommand that starts a VM takes: --vm-file (also its first
// positional word) and --dump-config.
void AddVmFileOptions(po::options_description& options);

// Reads `path` against the subcommand's `options`; throws UsageError "FILE:LINE: KEY: why" for
// a syntax error, an unknown key or a value of the wrong type.
VmFile LoadVmFile(const std::string& path, const po::options_description& options,
                  std::string_view subcommand);

// The command line of a subcommand that starts a VM: its options, then the VM file's values
// for the options the command line did not give.
struct VmCommandLine {
  po::variables_map vm;
  VmFile file;
};
VmCommandLine ParseVmCommandLine(const Args& args, const po::options_description& options,
                                 std::string_view subcommand);

// Rethrows a UsageError about an option the VM file set as "FILE:LINE: KEY: why"; any other
// exception as it is. Call inside a catch block.
[[noreturn]] void RethrowWithFileLocation(const VmCommandLine& command_line);

// Builds what the subcommand needs from the command line, with errors located in the file.
template <typename Build>
auto FromVmCommandLine(const VmCommandLine& command_line, Build&& build) {
  try {
    return build(command_line.vm);
  } catch (...) {
    RethrowWithFileLocation(command_line);
  }
}

// --dump-config[=toml|json]: the effective definition (file and command line merged, paths
// absolute) in the VM file's own schema, loadable again; options left at their default are
// comments in TOML. Returns false when --dump-config was not given.
bool DumpConfigIfAsked(const VmCommandLine& command_line, const po::options_description& options,
                       std::ostream& out);

}  // namespace kvmrun::cli

#endif  // KVMRUN_CLI_VM_FILE_H_

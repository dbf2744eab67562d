// The options that describe a VM, declared once for every subcommand that starts one, so a
// flag means the same thing, with the same help, in `run`, `boot-test` and `timecheck`:
//   guest     --os, --qemu, --accel and the clock overrides
//   hardware  --machine, --cpu, --memory, --cpus
//   payload   --kernel, --initrd, --append, --disk
// Each Add* declares a group; the matching Apply* reads it into a VmSpec.
#ifndef KVMRUN_CLI_VM_OPTIONS_H_
#define KVMRUN_CLI_VM_OPTIONS_H_

#include "cli/cli_common.h"
#include "kvmrun/vm_spec.h"

namespace kvmrun::cli {

// --os is required unless `default_os` is given.
// --os defaults to linux wherever kvmrun starts a VM (run, boot-test, timecheck), as VmSpec does
// in the library; policy and verify ask for it (they describe or judge a guest they cannot see).
void AddGuestOptions(po::options_description& options);
void ApplyGuestOptions(const po::variables_map& vm, VmSpec& spec);

// After ApplyGuestOptions: --memory and --cpus default to what the OS needs (RecommendedSizing).
void AddHardwareOptions(po::options_description& options);
void ApplyHardwareOptions(const po::variables_map& vm, VmSpec& spec);

// With `snapshot_disks`, every --disk is attached with its writes discarded (boot tests).
void AddPayloadOptions(po::options_description& options, bool snapshot_disks);
void ApplyPayloadOptions(const po::variables_map& vm, VmSpec& spec, bool snapshot_disks);

}  // namespace kvmrun::cli

#endif  // KVMRUN_CLI_VM_OPTIONS_H_

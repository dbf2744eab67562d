// kvmrun: launch QEMU/KVM guests with a clock policy that fits the guest, and prove it.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <iostream>

#include "cli/cli_common.h"
#include "cli/commands.h"

namespace {

using kvmrun::cli::Args;

struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(const Args&);
};

constexpr Subcommand kSubcommands[] = {
    {"run", "boot a VM under its clock policy, verified before the guest runs",
     kvmrun::cli::RunCommand},
    {"policy", "show the clock policy for a guest OS and the QEMU arguments it renders to",
     kvmrun::cli::PolicyCommand},
    {"boot-test", "boot a kernel and pass when its console prints a pattern; JUnit output",
     kvmrun::cli::BootTestCommand},
    {"timecheck", "measure in a guest how many timer ticks a policy loses when the VM stalls",
     kvmrun::cli::TimecheckCommand},
    {"verify", "check the clocks of a running QEMU against a policy", kvmrun::cli::VerifyCommand},
    {"doctor", "show the QEMU found, its capabilities, and whether KVM works",
     kvmrun::cli::DoctorCommand},
    {"qmp", "run a QMP command on a running QEMU, or print its events", kvmrun::cli::QmpCommand},
    {"exec", "run a command in a named VM through its guest agent; its exit status is ours",
     kvmrun::cli::ExecCommand},
    {"sync", "set a running guest's wall clock from the host's", kvmrun::cli::SyncCommand},
    {"snapshot", "save a named VM's state to a file (restore: kvmrun run --restore FILE)",
     kvmrun::cli::SnapshotCommand},
    {"console", "attach this terminal to a named VM's serial console (Ctrl-] detaches)",
     kvmrun::cli::ConsoleCommand},
    {"report", "merge the results of a sharded boot-test suite and judge it",
     kvmrun::cli::ReportCommand},
    {"ps", "list the named VMs this user runs", kvmrun::cli::PsCommand},
    {"stop", "stop a named VM through its shutdown ladder", kvmrun::cli::StopCommand},
};

int Usage(std::ostream& out) {
  out << "Usage: kvmrun <subcommand> [options]   (kvmrun <subcommand> --help for details)\n"
      << "       kvmrun --version\n\n"
      << "Launches QEMU/KVM virtual machines with the clock policy their guest OS needs, and\n"
      << "proves it over QMP.\n\nSubcommands:\n";
  for (const Subcommand& s : kSubcommands) out << "  " << s.name << "\t" << s.summary << "\n";
  return kvmrun::cli::kExitUsage;
}

// Runs a subcommand and maps what escapes it to an exit code and a message on stderr.
int Dispatch(const Subcommand& s, const Args& args) {
  try {
    return s.run(args);
  } catch (...) {
    return kvmrun::cli::ReportCurrentException(std::string("kvmrun ") + s.name + ": ", std::cerr);
  }
}

// Started with stdin, stdout or stderr closed (`kvmrun run <&- >&-`, a careless service
// manager), the next descriptors kvmrun opens would take those numbers: the console would
// then be written into a QMP socket, and a guest could send QMP commands. Each closed one gets
// /dev/null before anything else is opened.
void OpenClosedStandardDescriptors() {
  for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; ++fd) {
    if (fcntl(fd, F_GETFD) != -1) continue;
    const int null_fd = open("/dev/null", O_RDWR);  // the lowest free number: this one
    if (null_fd >= 0 && null_fd != fd) {
      dup2(null_fd, fd);
      close(null_fd);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  OpenClosedStandardDescriptors();
  // Every VM has threads that mostly sleep (I/O, QMP, the console, the stall watch), and glibc
  // gives threads up to 8 malloc arenas per core, each holding on to its own free memory: 20
  // VMs from one boot-test cost megabytes of it. Two arenas are plenty for threads that wait.
  mallopt(M_ARENA_MAX, 2);
  // A reader that goes away (`kvmrun run | head -1`) is an EPIPE to handle, not a signal that
  // kills kvmrun before it can stop its VM.
  signal(SIGPIPE, SIG_IGN);
  const std::string name = argc > 1 ? argv[1] : "";
  if (name == "--help" || name == "-h" || name == "help") return Usage(std::cout), 0;
  if (name == "--version" || name == "-V") {
    std::cout << kvmrun::cli::VersionText() << "\n";
    return 0;
  }
  for (const Subcommand& s : kSubcommands) {
    if (name == s.name) return Dispatch(s, Args(argv + 2, argv + argc));
  }
  if (name.empty()) return Usage(std::cerr);
  std::string valid;
  for (const Subcommand& s : kSubcommands)
    valid += (valid.empty() ? "" : ", ") + std::string(s.name);
  std::cerr << "kvmrun: unknown subcommand '" << name << "'; valid: " << valid << "\n";
  return kvmrun::cli::kExitUsage;
}

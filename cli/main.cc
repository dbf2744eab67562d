// kvmrun: launch QEMU/KVM guests with a clock policy that fits the guest, and prove it.
#include <iostream>

#include "cli/commands.h"
#include "kvmrun/error.h"

namespace {

struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(const kvmrun::cli::Args&);
};

constexpr Subcommand kSubcommands[] = {
    {"policy", "show the clock policy for a guest OS and the QEMU arguments it renders to",
     kvmrun::cli::PolicyCommand},
    {"qmp", "run a QMP command on a running QEMU, or print its events",
     kvmrun::cli::QmpCommand},
};

int Usage(std::ostream& out) {
  out << "Usage: kvmrun <subcommand> [options]   (kvmrun <subcommand> --help for details)\n\n";
  for (const Subcommand& s : kSubcommands) out << "  " << s.name << "\t" << s.summary << "\n";
  return kvmrun::cli::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "";
  if (name == "--help" || name == "-h" || name == "help") return Usage(std::cout), 0;
  for (const Subcommand& s : kSubcommands) {
    if (name != s.name) continue;
    try {
      return s.run(kvmrun::cli::Args(argv + 2, argv + argc));
    } catch (const kvmrun::UsageError& e) {
      std::cerr << "kvmrun " << name << ": " << e.what() << "\n";
      return kvmrun::cli::kExitUsage;
    } catch (const kvmrun::Error& e) {
      std::cerr << "kvmrun " << name << ": " << e.what() << "\n";
      return kvmrun::cli::kExitFailure;
    }
  }
  if (name.empty()) return Usage(std::cerr);
  std::string valid;
  for (const Subcommand& s : kSubcommands)
    valid += (valid.empty() ? "" : ", ") + std::string(s.name);
  std::cerr << "kvmrun: unknown subcommand '" << name << "'; valid: " << valid << "\n";
  return kvmrun::cli::kExitUsage;
}

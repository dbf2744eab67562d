// kvmrun snapshot: save a running named VM's state to a file, show what a file holds; and the
// snapshot steps of `kvmrun run` (--snapshot-at/--save, --restore).
#include <algorithm>
#include <iostream>

#include "cli/commands.h"
#include "cli/snapshot_run.h"
#include "core/safe_text.h"
#include "kvmrun/error.h"
#include "kvmrun/guest_clock.h"
#include "kvmrun/qmp_codec.h"
#include "kvmrun/snapshot.h"
#include "kvmrun/vm_registry.h"

namespace kvmrun::cli {
namespace {

using namespace std::chrono_literals;

std::string MiB(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

std::string SavedLine(const std::string& file, const SnapshotSaveResult& saved) {
  return "kvmrun: saved to " + file + " (" + MiB(saved.header.state_bytes) + " in " +
         SecondsText(saved.took) + ")";
}

int Save(const po::variables_map& vm, const std::vector<std::string>& operands) {
  if (operands.size() != 3) {
    throw UsageError("snapshot save takes NAME FILE; 'kvmrun ps' lists the VMs");
  }
  const std::string& name = operands[1];
  const std::string& file = operands[2];
  const NamedVm found = RunningVm(name);
  const std::string refusal = found.info.value("snapshot_refusal", "");
  if (!refusal.empty()) throw UsageError("cannot save a snapshot of '" + name + "': " + refusal);
  SnapshotIdentity identity;
  try {
    identity = SnapshotIdentityFromJson(found.info.at("snapshot_identity"));
  } catch (const nlohmann::json::exception&) {
    throw Error("VM '" + name + "' was started by a kvmrun that does not record snapshots");
  }
  const bool keep_running = vm.count("keep-running") > 0;
  if (keep_running && !identity.disks.empty()) {
    throw UsageError("--keep-running: VM '" + name + "' writes to disk '" +
                     identity.disks.front().path +
                     "'; once it runs on, the disk no longer matches the saved memory (save "
                     "without --keep-running, which stops the VM as 'virsh save' does)");
  }
  QmpClient qmp(ConnectQmpSocket(found.info.value("qmp_socket", ""), 5s));
  const bool was_running = qmp.Execute("query-status").value("running", false);
  SnapshotSaveResult saved;
  try {
    saved = SaveSnapshot(qmp, identity, file);
  } catch (const QmpDisconnected&) {
    throw;
  } catch (const Error&) {
    if (was_running) {
      try {
        qmp.Execute("cont");  // nothing was saved: the VM runs on as it was
      } catch (const Error&) {
        // QEMU is going (a stop cancelled the save): the save's own error is the one to tell.
      }
    }
    throw;
  }
  if (keep_running) {
    if (was_running) qmp.Execute("cont");
  } else {
    try {
      qmp.Execute("quit");
    } catch (const QmpDisconnected&) {
      // QEMU went before its reply reached us: quit is what was asked.
    }
  }
  if (vm.count("json")) {
    nlohmann::json json = SnapshotHeaderToJson(saved.header);
    json["file"] = file;
    json["took_ms"] = saved.took.count();
    json["vm_stopped"] = !keep_running;
    std::cout << DumpJson(json, 2) << std::endl;
  } else {
    std::cerr << SavedLine(file, saved) << "; VM '" << name << "' "
              << (keep_running ? "runs on" : "was stopped (--keep-running keeps it)") << "\n"
              << "  kvmrun run --restore " << file << " <the same options>\n";
  }
  return kExitOk;
}

int Show(const po::variables_map& vm, const std::vector<std::string>& operands) {
  if (operands.size() != 2) throw UsageError("snapshot show takes FILE");
  const SnapshotHeader header = ReadSnapshotHeader(operands[1]);
  if (vm.count("json")) {
    std::cout << DumpJson(SnapshotHeaderToJson(header), 2) << std::endl;
    return kExitOk;
  }
  // Every field is the file's: shown escaped (a saved_at holding an escape sequence is text).
  const SnapshotIdentity& id = header.identity;
  std::cout << "saved      " << SafeText(header.saved_at) << "\n"
            << "qemu       " << SafeText(id.qemu_version) << " (" << SafeText(id.qemu) << "), "
            << SafeText(id.accel) << "\n"
            << "os         " << SafeText(id.os) << (id.agent ? ", guest agent port" : "") << "\n"
            << "overrides  "
            << (!id.policy ? "(not recorded: saved by an older kvmrun)"
                : OverridesText(OverridesOf(*id.policy)).empty()
                    ? "none"
                    : OverridesText(OverridesOf(*id.policy)))
            << "\n"
            << "state      " << MiB(header.state_bytes) << "\n";
  for (const SnapshotDisk& disk : id.disks) {
    std::cout << "disk       " << SafeText(disk.path) << " (" << disk.size << " bytes)\n";
  }
  std::string argv;
  for (const std::string& arg : id.argv) argv += (argv.empty() ? "" : " ") + arg;
  std::cout << "argv       " << SafeText(argv) << "\n";
  return kExitOk;
}

}  // namespace

int SnapshotCommand(const Args& args) {
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("operands", po::value<std::vector<std::string>>()->value_name("ACTION ARGS"),
       "the action and its operands, given as words: save NAME FILE, or show FILE")
      ("keep-running", "save: let the VM run on afterwards (only a VM without writable "
                       "disks)")
      ("json", "print the snapshot's header as JSON");
  // clang-format on
  po::positional_options_description positional;
  positional.add("operands", -1);
  const po::variables_map vm = Parse(args, options, &positional);
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun snapshot save NAME FILE [--keep-running] | kvmrun snapshot show FILE",
        "save: pauses the named VM and writes its whole state (memory, devices) to FILE, then\n"
        "stops it, as 'virsh save' does: a VM that ran on would change its disks under the\n"
        "saved memory. 'kvmrun run --restore FILE' with the same options starts a new VM at\n"
        "that instant, each with its own temporary disk overlay, and sets the guest's clock\n"
        "(it is as old as the snapshot). 'kvmrun run --snapshot-at REGEX --save FILE' boots\n"
        "and saves in one go.\n"
        "show: what FILE was saved from (QEMU, accelerator, OS, disks, command line).\n"
        "Exit: 0 done, 1 QEMU could not save, 2 bad usage, no such VM or not a snapshot.\n\n"
        "Examples:\n"
        "  kvmrun snapshot save web booted.kvmrun\n"
        "  kvmrun snapshot show booted.kvmrun",
        options, &positional);
    return kExitOk;
  }
  const auto operands =
      vm.count("operands") ? vm["operands"].as<std::vector<std::string>>() : Args{};
  if (operands.empty()) throw UsageError("an action is required; valid: save, show");
  if (operands[0] == "save") return Save(vm, operands);
  if (operands[0] == "show") return Show(vm, operands);
  throw UsageError("invalid action '" + operands[0] + "'; valid: save, show");
}

int SaveAtConsolePattern(Vm& machine, const ConsolePattern& pattern, const std::string& file,
                         std::chrono::milliseconds timeout, StopRequests& stop, bool json) {
  const ConsoleMatch match = machine.console().WaitForAnyUntil(
      {pattern}, std::chrono::steady_clock::now() + timeout, [&stop] { return stop.Pending(); });
  if (match.outcome != ConsoleMatch::Outcome::kMatched) {
    const std::string why = stop.Pending() ? stop.Take().value_or("a stop request")
                            : match.outcome == ConsoleMatch::Outcome::kClosed
                                ? "the VM ended first"
                                : "none within " + SecondsText(timeout);
    machine.Shutdown(1s);
    throw VmError("--snapshot-at: no console line matched (" + why + "); nothing was saved",
                  machine.argv(), machine.StderrTail(), machine.console().Tail());
  }
  const SnapshotSaveResult saved = machine.SaveSnapshot(file);
  machine.Shutdown(0ms);  // paused: the guest cannot power off; quit at once
  if (json) {
    nlohmann::json out = SnapshotHeaderToJson(saved.header);
    out["file"] = file;
    out["took_ms"] = saved.took.count();
    out["line"] = match.line;
    std::cout << DumpJson(out, 2) << std::endl;
  } else {
    std::cerr << SavedLine(file, saved) << " at the console line '" << SafeText(match.line) << "'\n"
              << "  kvmrun run --restore " << file << " <the same options>\n";
  }
  return kExitOk;
}

std::string ResyncAfterRestore(Vm& machine, std::chrono::milliseconds agent_wait,
                               StopRequests* stop) {
  const SnapshotHeader& header = *machine.restored_from();
  std::string line = "kvmrun: restored " + machine.spec().restore_from + ", saved " +
                     SafeText(header.saved_at) + " (loaded in " +
                     SecondsText(std::chrono::duration_cast<std::chrono::milliseconds>(
                         machine.timings().incoming)) +
                     ")";
  if (machine.agent_socket().empty()) {
    return line + "; no guest agent port: the guest's clock is as old as the snapshot";
  }
  // The agent is asked in one-second attempts: a stop request (SIGTERM, kvmrun stop) is seen
  // within a second, and a wait longer than a few seconds says what it waits for, once.
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + agent_wait;
  bool told = false;
  std::string why;
  while (std::chrono::steady_clock::now() < deadline) {
    if (stop != nullptr && stop->Pending()) {
      return line +
             "; the guest's clock, as old as the snapshot, was not set: stopped while "
             "waiting for the guest agent";
    }
    try {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      auto agent = machine.ConnectAgent(
          std::clamp(left, std::chrono::milliseconds(1), std::chrono::milliseconds(1000)));
      return line + "; guest clock: " + FormatResync(ResyncGuestClock(*agent));
    } catch (const GuestAgentUnavailable& e) {
      why = e.what();
    } catch (const Error& e) {
      return line + "; the guest's clock, as old as the snapshot, was not set: " + e.what();
    }
    if (!told && std::chrono::steady_clock::now() - start > std::chrono::seconds(3)) {
      StderrLine("kvmrun: waiting up to " +
                 SecondsText(std::chrono::duration_cast<std::chrono::milliseconds>(agent_wait)) +
                 " for the restored guest's agent to set its clock (a stop ends the wait)");
      told = true;
    }
  }
  return line +
         "; the guest's clock, as old as the snapshot, was not set: no guest agent "
         "answered within " +
         SecondsText(std::chrono::duration_cast<std::chrono::milliseconds>(agent_wait)) +
         " (the VM runs on with its clock as restored)";
}

}  // namespace kvmrun::cli

// libFuzzer target for VM options -> QEMU argv. Any `kvmrun run` arguments that parse, and that
// ValidateVmSpec's name checks accept, must give an argv in which no user value turned into
// QEMU options of its own: every option is one kvmrun emits, each comma-separated value has
// exactly the keys kvmrun put there, and each name or path reads back as what the user gave.
// The user's --extra-arg values are QEMU syntax by design and are not checked.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "kvmrun/clock_policy.h"
#include "kvmrun/error.h"
#include "kvmrun/hardware_profile.h"
#include "kvmrun/qemu_command.h"

namespace {

[[noreturn]] void Fail() { __builtin_trap(); }
void Check(bool ok) {
  if (!ok) Fail();
}

// QEMU's option syntax (QemuOpts): "a=b,c=d", ",," a literal comma; a first element without
// '=' is the implied key's value ("socket,id=x", "max,+feature", "q35").
std::vector<std::pair<std::string, std::string>> SplitOpts(const std::string& value) {
  std::vector<std::string> items(1);
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] != ',') {
      items.back() += value[i];
    } else if (i + 1 < value.size() && value[i + 1] == ',') {
      items.back() += ',';
      ++i;
    } else {
      items.emplace_back();
    }
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& item : items) {
    const auto eq = item.find('=');
    out.emplace_back(eq == std::string::npos ? "" : item.substr(0, eq),
                     eq == std::string::npos ? item : item.substr(eq + 1));
  }
  return out;
}

std::map<std::string, std::string> Keys(const std::string& value,
                                        const std::set<std::string>& allowed) {
  std::map<std::string, std::string> keys;
  for (const auto& [key, val] : SplitOpts(value)) {
    Check(allowed.count(key) == 1);        // no key kvmrun did not put there
    Check(keys.emplace(key, val).second);  // and none twice
  }
  return keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args(1);
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == '\0') {
      args.emplace_back();
    } else {
      args.back() += static_cast<char>(data[i]);
    }
  }
  if (args.size() > 64) return 0;
  args.insert(args.begin(), {"--os", "linux"});
  kvmrun::VmSpec spec;
  try {
    spec = kvmrun::cli::ParseRunArgs(args);
  } catch (const kvmrun::UsageError&) {
    return 0;
  }
  // What ValidateVmSpec refuses before QEMU runs.
  if ((!spec.machine.empty() && !kvmrun::IsQemuModelName(spec.machine)) ||
      (!spec.cpu_model.empty() && !kvmrun::IsQemuModelName(spec.cpu_model)) || spec.name.empty() ||
      std::find(spec.firmware_dirs.begin(), spec.firmware_dirs.end(), "") !=
          spec.firmware_dirs.end()) {
    return 0;  // (and a firmware directory that does not exist, such as "")
  }
  kvmrun::LaunchPlan plan;
  plan.qemu = "/usr/bin/qemu-system-x86_64";
  plan.accel = kvmrun::Accel::kTcg;
  plan.cpu_model = spec.cpu_model.empty() ? "max" : spec.cpu_model;
  plan.agent_socket = "/run/user/1000/kvmrun-1-abc,def/agent.sock";
  try {
    plan.hardware = kvmrun::ResolveHardware(spec);
  } catch (const kvmrun::UsageError&) {
    return 0;
  }
  if (plan.hardware.firmware != kvmrun::Firmware::kBios) {
    plan.firmware_code = "/usr/share/OVMF/OVMF_CODE_4M.fd";
    plan.firmware_vars = "/home/u/vm,s/uefi-vars.fd";
    plan.firmware_requires_smm = plan.hardware.firmware == kvmrun::Firmware::kUefiSecure;
  }
  if (plan.hardware.tpm) plan.tpm_socket = "/run/user/1000/kvmrun-1-abc,def/swtpm.sock";
  plan.display_socket = "/run/user/1000/kvmrun-1-abc,def/vnc.sock";
  // The files the -drive options open, in order.
  std::vector<std::string> files;
  if (!plan.firmware_code.empty()) files = {plan.firmware_code, plan.firmware_vars};
  const bool cdrom_first = spec.boot_from == kvmrun::BootFrom::kCdrom;
  if (cdrom_first) files.insert(files.end(), spec.cdroms.begin(), spec.cdroms.end());
  for (const kvmrun::DiskSpec& disk : spec.disks) files.push_back(disk.path);
  if (!cdrom_first) files.insert(files.end(), spec.cdroms.begin(), spec.cdroms.end());
  plan.clock = kvmrun::RenderClock(kvmrun::MakeClockPolicy(spec.os, spec.clock_overrides),
                                   kvmrun::ShippedCapabilitiesFor("7.2"), plan.accel);
  const std::vector<std::string> argv = kvmrun::BuildQemuArgv(spec, plan);

  const std::set<std::string> flags = {"-nodefaults", "-no-user-config", "-S", "-no-reboot"};
  std::size_t drives = 0, chardevs = 0;
  const std::size_t end = argv.size() - spec.extra_args.size();
  for (std::size_t i = 1; i < end; ++i) {
    const std::string& option = argv[i];
    if (flags.count(option)) continue;
    Check(i + 1 < end);
    const std::string& value = argv[++i];
    if (option == "-name") {
      Check(Keys(value, {"guest"}).at("guest") == spec.name);
    } else if (option == "-drive") {
      const auto keys = Keys(value, {"file.driver", "file.filename", "format", "if", "readonly",
                                     "snapshot", "media", "id", "unit"});
      Check(keys.at("file.driver") == "file");
      Check(drives < files.size() && keys.at("file.filename") == kvmrun::LocalPath(files[drives]));
      ++drives;
    } else if (option == "-chardev") {
      const auto keys = Keys(value, {"", "id", "fd", "path", "server", "wait"});
      Check(keys.at("") == "socket");
      if (keys.count("path")) {
        Check(keys.at("path") == kvmrun::LocalPath(spec.qmp_socket) ||
              keys.at("path") == plan.agent_socket || keys.at("path") == plan.tpm_socket);
      }
      ++chardevs;
    } else if (option == "-device") {
      Keys(value, {"", "id", "bus", "chardev", "name", "drive", "bootindex", "tpmdev", "fsdev",
                   "mount_tag"});
    } else if (option == "-fsdev") {
      Keys(value, {"", "id", "path", "security_model", "readonly"});
    } else if (option == "-tpmdev") {
      Keys(value, {"", "id", "chardev"});
    } else if (option == "-vnc") {
      const auto keys = Keys(value, {"", "to", "password"});
      const std::string& vnc = keys.at("");
      const std::string& listen = spec.display.listen;
      if (listen.empty()) {
        Check(vnc == "127.0.0.1:0" && keys.at("to") == "99" && keys.at("password") == "on");
      } else if (listen == "unix") {
        Check(vnc == "unix:" + plan.display_socket);
      } else {
        Check(vnc.substr(0, vnc.rfind(':')) == listen.substr(0, listen.rfind(':')) &&
              keys.at("password") == "on");
      }
    } else if (option == "-spice") {
      Check(Keys(value, {"unix", "addr", "disable-ticketing"}).at("addr") == plan.display_socket);
    } else if (option == "-nic") {
      std::size_t forwards = 0;
      for (const auto& [key, val] : SplitOpts(value)) {
        Check(key.empty() || key == "model" || key == "hostfwd");
        if (key == "hostfwd") {
          Check(forwards < spec.forwards.size() && val == ToString(spec.forwards[forwards]));
          ++forwards;
        }
      }
      Check(forwards == spec.forwards.size());
    } else if (option == "-kernel") {
      Check(value == kvmrun::LocalPath(spec.kernel));
    } else if (option == "-initrd") {
      Check(value == kvmrun::LocalPath(spec.initrd));
    } else if (option == "-append") {
      Check(value == kvmrun::KernelCommandLine(spec, plan.accel));
    } else if (option == "-machine") {
      const auto keys = Keys(value, {"", "hpet", "smm"});
      if (keys.count("")) Check(keys.at("") == plan.hardware.machine);
    } else if (option == "-cpu") {
      Check(SplitOpts(value).front().second == plan.cpu_model);
    } else if (option == "-L") {
      Check(!value.empty() && (value[0] == '/' || value.rfind("./", 0) == 0));
    } else if (option == "-mon") {
      Keys(value, {"chardev", "mode"});
    } else if (option == "-serial" || option == "-accel" || option == "-m" || option == "-smp" ||
               option == "-display" || option == "-rtc" || option == "-global") {
      // Values kvmrun makes itself, from enums and numbers.
    } else {
      Fail();  // an option kvmrun never emits
    }
  }
  Check(drives == files.size());
  Check(chardevs == 2 + (spec.qmp_socket.empty() ? 0 : 1) + (spec.agent ? 1 : 0) +
                        (plan.tpm_socket.empty() ? 0 : 1));
  return 0;
}

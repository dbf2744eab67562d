#include "kvmrun/qemu_command.h"

namespace kvmrun {

std::string EscapeQemuOptionValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

std::vector<std::string> BuildQemuArgv(const VmSpec& spec, const LaunchPlan& plan) {
  std::vector<std::string> argv = {plan.qemu};
  const auto add = [&](std::initializer_list<std::string> args) {
    argv.insert(argv.end(), args.begin(), args.end());
  };

  // A paused VM with only what kvmrun asks for: no default devices, no host config files.
  add({"-name", EscapeQemuOptionValue(spec.name), "-nodefaults", "-no-user-config", "-display",
       "none", "-S"});
  if (!spec.machine.empty()) add({"-machine", spec.machine});
  add({"-accel", std::string(ToString(plan.accel))});
  add({"-m", std::to_string(spec.memory_mib), "-smp", std::to_string(spec.cpus)});
  const auto cpu = CpuArgv(plan.cpu_model, plan.clock.cpu_features);
  argv.insert(argv.end(), cpu.begin(), cpu.end());
  argv.insert(argv.end(), plan.clock.argv.begin(), plan.clock.argv.end());

  // kvmrun's own monitor and the serial console: inherited socket descriptors, so there is no
  // socket file to race for, clean up or protect.
  add({"-chardev", std::string("socket,id=") + kQmpChardevId + ",fd=" + std::to_string(plan.qmp_fd),
       "-mon", std::string("chardev=") + kQmpChardevId + ",mode=control"});
  add({"-chardev",
       std::string("socket,id=") + kConsoleChardevId + ",fd=" + std::to_string(plan.console_fd),
       "-serial", std::string("chardev:") + kConsoleChardevId});
  if (!spec.qmp_socket.empty()) {
    add({"-chardev",
         std::string("socket,id=") + kPublicQmpChardevId +
             ",path=" + EscapeQemuOptionValue(spec.qmp_socket) + ",server=on,wait=off",
         "-mon", std::string("chardev=") + kPublicQmpChardevId + ",mode=control"});
  }

  // -kernel, -initrd and -append take their value verbatim (no comma syntax).
  if (!spec.kernel.empty()) add({"-kernel", spec.kernel});
  if (!spec.initrd.empty()) add({"-initrd", spec.initrd});
  if (!spec.append.empty()) add({"-append", spec.append});
  for (const DiskSpec& disk : spec.disks) {
    std::string drive = "file=" + EscapeQemuOptionValue(disk.path) +
                        ",format=" + std::string(ToString(disk.format)) + ",if=virtio";
    if (disk.read_only) drive += ",readonly=on";
    if (disk.snapshot) drive += ",snapshot=on";
    add({"-drive", drive});
  }
  if (!spec.cdrom.empty()) {
    add({"-drive",
         "file=" + EscapeQemuOptionValue(spec.cdrom) + ",media=cdrom,readonly=on,if=ide"});
  }
  if (spec.network) add({"-nic", "user,model=virtio-net-pci"});
  if (spec.no_reboot) add({"-no-reboot"});
  for (const std::string& dir : plan.firmware_dirs) add({"-L", dir});
  for (const std::string& dir : spec.firmware_dirs) add({"-L", dir});

  argv.insert(argv.end(), spec.extra_args.begin(), spec.extra_args.end());
  return argv;
}

}  // namespace kvmrun

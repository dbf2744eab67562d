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

std::string LocalPath(std::string_view path) {
  if (path.empty() || path.front() == '/') return std::string(path);
  return "./" + std::string(path);
}

std::string LocalFileDrive(std::string_view path, DiskFormat format) {
  return "file.driver=file,file.filename=" + EscapeQemuOptionValue(LocalPath(path)) +
         ",format=" + std::string(ToString(format));
}

std::vector<std::string> BuildQemuArgv(const VmSpec& spec, const LaunchPlan& plan) {
  std::vector<std::string> argv = {plan.qemu};
  const auto add = [&](std::initializer_list<std::string> args) {
    argv.insert(argv.end(), args.begin(), args.end());
  };

  // A paused VM with only what kvmrun asks for: no default devices, no host config files.
  // "guest=" keeps a name such as "db=primary" from being read as QEMU's own -name options.
  const bool standalone = !plan.standalone_qmp_socket.empty();
  add({"-name", "guest=" + EscapeQemuOptionValue(spec.name), "-nodefaults", "-no-user-config",
       "-display", "none"});
  if (!standalone) add({"-S"});
  if (!spec.machine.empty()) add({"-machine", spec.machine});
  add({"-accel", std::string(ToString(plan.accel))});
  add({"-m", std::to_string(spec.memory_mib), "-smp", std::to_string(spec.cpus)});
  const auto cpu = CpuArgv(plan.cpu_model, plan.clock.cpu_features);
  argv.insert(argv.end(), cpu.begin(), cpu.end());
  argv.insert(argv.end(), plan.clock.argv.begin(), plan.clock.argv.end());

  // kvmrun's own monitor and the serial console: inherited socket descriptors, so there is no
  // socket file to race for, clean up or protect.
  // Standalone, the same two as a socket file and the terminal QEMU runs on.
  add({"-chardev",
       std::string("socket,id=") + kQmpChardevId +
           (standalone ? ",path=" + EscapeQemuOptionValue(LocalPath(plan.standalone_qmp_socket)) +
                             ",server=on,wait=off"
                       : ",fd=" + std::to_string(kQmpFd)),
       "-mon", std::string("chardev=") + kQmpChardevId + ",mode=control"});
  add({"-chardev",
       standalone
           ? std::string("stdio,id=") + kConsoleChardevId
           : std::string("socket,id=") + kConsoleChardevId + ",fd=" + std::to_string(kConsoleFd),
       "-serial", std::string("chardev:") + kConsoleChardevId});
  if (!spec.qmp_socket.empty()) {
    add({"-chardev",
         std::string("socket,id=") + kPublicQmpChardevId +
             ",path=" + EscapeQemuOptionValue(LocalPath(spec.qmp_socket)) + ",server=on,wait=off",
         "-mon", std::string("chardev=") + kPublicQmpChardevId + ",mode=control"});
  }

  // -kernel, -initrd and -append take their value verbatim (no comma syntax), and as separate
  // argv elements a value starting with '-' stays a value.
  if (!spec.kernel.empty()) add({"-kernel", LocalPath(spec.kernel)});
  if (!spec.initrd.empty()) add({"-initrd", LocalPath(spec.initrd)});
  if (!spec.append.empty()) add({"-append", spec.append});
  for (const DiskSpec& disk : spec.disks) {
    std::string drive = LocalFileDrive(disk.path, disk.format) + ",if=virtio";
    if (disk.read_only) drive += ",readonly=on";
    if (disk.snapshot) drive += ",snapshot=on";
    add({"-drive", drive});
  }
  if (!spec.cdrom.empty()) {
    add({"-drive",
         LocalFileDrive(spec.cdrom, DiskFormat::kRaw) + ",media=cdrom,readonly=on,if=ide"});
  }
  if (spec.agent && !plan.agent_socket.empty()) {
    // The guest agent's virtio-serial port, its host end a socket QEMU listens on: one client
    // at a time, and a new one may come when the last has gone (kvmrun exec from elsewhere).
    add({"-device", "virtio-serial-pci,id=kvmrun-serial", "-chardev",
         std::string("socket,id=") + kAgentChardevId +
             ",path=" + EscapeQemuOptionValue(LocalPath(plan.agent_socket)) + ",server=on,wait=off",
         "-device",
         std::string("virtserialport,bus=kvmrun-serial.0,chardev=") + kAgentChardevId +
             ",name=org.qemu.guest_agent.0"});
  }
  for (std::size_t i = 0; i < spec.shares.size(); ++i) {
    const ShareSpec& share = spec.shares[i];
    const std::string id = "kvmrun-fs" + std::to_string(i);
    // security_model=none: the guest's files are the QEMU user's, with no xattr mapping.
    add({"-fsdev",
         "local,id=" + id + ",path=" + EscapeQemuOptionValue(LocalPath(share.host_dir)) +
             ",security_model=none" + (share.read_only ? ",readonly=on" : ""),
         "-device", "virtio-9p-pci,fsdev=" + id + ",mount_tag=" + share.tag});
  }
  if (spec.network) add({"-nic", "user,model=virtio-net-pci"});
  if (spec.no_reboot) add({"-no-reboot"});
  for (const std::string& dir : plan.firmware_dirs) add({"-L", LocalPath(dir)});
  for (const std::string& dir : spec.firmware_dirs) add({"-L", LocalPath(dir)});

  argv.insert(argv.end(), spec.extra_args.begin(), spec.extra_args.end());
  return argv;
}

}  // namespace kvmrun

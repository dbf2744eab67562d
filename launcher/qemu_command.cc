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

namespace {

std::string_view QemuNicModel(NicModel model) {
  switch (model) {
    case NicModel::kVirtio:
      return "virtio-net-pci";
    case NicModel::kE1000e:
      return "e1000e";
    case NicModel::kE1000:
      return "e1000";
    case NicModel::kRtl8139:
      return "rtl8139";
  }
  return "?";
}

// Disks and cdroms: each a -drive without a device (if=none) and a -device that puts it on its
// bus, with its place in the boot order when the firmware boots from disk (no --kernel).
class DriveWriter {
 public:
  DriveWriter(std::vector<std::string>& argv, bool boot_order)
      : argv_(argv), boot_order_(boot_order) {}

  void Add(const std::string& drive, const std::string& id, DiskBus bus, bool cdrom) {
    argv_.insert(argv_.end(), {"-drive", drive + ",if=none,id=" + id});
    std::string device;
    switch (bus) {
      case DiskBus::kVirtio:
        device = "virtio-blk-pci";
        break;
      case DiskBus::kSata:
        if (sata_ports_++ == 0) argv_.insert(argv_.end(), {"-device", "ich9-ahci,id=kvmrun-ahci"});
        device = std::string(cdrom ? "ide-cd" : "ide-hd") + ",bus=kvmrun-ahci." +
                 std::to_string(sata_ports_ - 1);
        break;
      case DiskBus::kIde:
        device = cdrom ? "ide-cd" : "ide-hd";  // QEMU picks the next free IDE unit
        break;
      case DiskBus::kScsi:
        if (scsi_devices_++ == 0) {
          argv_.insert(argv_.end(), {"-device", "virtio-scsi-pci,id=kvmrun-scsi"});
        }
        device = std::string(cdrom ? "scsi-cd" : "scsi-hd") + ",bus=kvmrun-scsi.0";
        break;
    }
    device += ",drive=" + id;
    if (boot_order_) device += ",bootindex=" + std::to_string(next_boot_index_++);
    argv_.insert(argv_.end(), {"-device", device});
  }

 private:
  std::vector<std::string>& argv_;
  bool boot_order_;
  int sata_ports_ = 0;
  int scsi_devices_ = 0;
  int next_boot_index_ = 0;
};

}  // namespace

std::string KernelCommandLine(const VmSpec& spec, Accel accel) {
  std::string append = spec.append;
  // Under TCG a busy host can starve the vCPU while Linux checks that its timer interrupt
  // arrives, and the kernel panics ("IO-APIC + timer doesn't work!"): seen with 20 guests on
  // 2 cores. no_timer_check skips that check, as OpenStack Nova's libvirt driver does for TCG
  // kernel boots (docs/timekeeping.md).
  if (accel == Accel::kTcg && !spec.kernel.empty() &&
      Describe(spec.os).family == GuestFamily::kLinux &&
      (" " + append + " ").find(" no_timer_check ") == std::string::npos) {
    append += std::string(append.empty() ? "" : " ") + "no_timer_check";
  }
  return append;
}

std::vector<std::string> BuildQemuArgv(const VmSpec& spec, const LaunchPlan& plan) {
  std::vector<std::string> argv = {plan.qemu};
  const auto add = [&](std::initializer_list<std::string> args) {
    argv.insert(argv.end(), args.begin(), args.end());
  };
  const HardwareProfile& hw = plan.hardware;

  // A paused VM with only what kvmrun asks for: no default devices, no host config files.
  // "guest=" keeps a name such as "db=primary" from being read as QEMU's own -name options.
  const bool standalone = !plan.standalone_qmp_socket.empty();
  add({"-name", "guest=" + EscapeQemuOptionValue(spec.name), "-nodefaults", "-no-user-config",
       "-display", spec.display.kind == DisplayKind::kGtk ? "gtk" : "none"});
  if (!standalone) add({"-S"});
  if (!hw.machine.empty()) add({"-machine", hw.machine});
  // Secure Boot's variables are writable only from SMM, so the guest's OS cannot forge them.
  if (plan.firmware_requires_smm) add({"-machine", "smm=on"});
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

  // UEFI: the firmware's code read-only, and the VM's own copy of its variable store.
  if (!plan.firmware_code.empty()) {
    add({"-drive",
         LocalFileDrive(plan.firmware_code, DiskFormat::kRaw) + ",if=pflash,unit=0,readonly=on",
         "-drive", LocalFileDrive(plan.firmware_vars, DiskFormat::kRaw) + ",if=pflash,unit=1"});
    if (plan.firmware_requires_smm) {
      add({"-global", "driver=cfi.pflash01,property=secure,value=on"});
    }
  }

  // -kernel, -initrd and -append take their value verbatim (no comma syntax), and as separate
  // argv elements a value starting with '-' stays a value.
  if (!spec.kernel.empty()) add({"-kernel", LocalPath(spec.kernel)});
  if (!spec.initrd.empty()) add({"-initrd", LocalPath(spec.initrd)});
  if (const std::string append = KernelCommandLine(spec, plan.accel); !append.empty()) {
    add({"-append", append});
  }
  DriveWriter drives(argv, spec.kernel.empty());
  const auto add_disks = [&] {
    for (std::size_t i = 0; i < spec.disks.size(); ++i) {
      const DiskSpec& disk = spec.disks[i];
      std::string drive = LocalFileDrive(disk.path, disk.format);
      if (disk.read_only) drive += ",readonly=on";
      if (disk.snapshot) drive += ",snapshot=on";
      drives.Add(drive, "kvmrun-disk" + std::to_string(i), disk.bus.value_or(hw.disk_bus), false);
    }
  };
  const auto add_cdroms = [&] {
    for (std::size_t i = 0; i < spec.cdroms.size(); ++i) {
      drives.Add(LocalFileDrive(spec.cdroms[i], DiskFormat::kRaw) + ",media=cdrom,readonly=on",
                 "kvmrun-cd" + std::to_string(i), hw.cdrom_bus, true);
    }
  };
  if (hw.boot_from == BootFrom::kCdrom) {
    add_cdroms();
    add_disks();
  } else {
    add_disks();
    add_cdroms();
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
  if (!plan.tpm_socket.empty()) {
    // TPM 2.0 on the TIS interface, which every x86 machine type has; swtpm does the work.
    add({"-chardev",
         std::string("socket,id=") + kTpmChardevId +
             ",path=" + EscapeQemuOptionValue(LocalPath(plan.tpm_socket)),
         "-tpmdev", std::string("emulator,id=kvmrun-tpm0,chardev=") + kTpmChardevId, "-device",
         "tpm-tis,tpmdev=kvmrun-tpm0"});
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
  if (spec.network || !spec.forwards.empty()) {
    std::string nic = "user,model=" + std::string(QemuNicModel(hw.nic));
    for (const PortForward& forward : spec.forwards) nic += ",hostfwd=" + ToString(forward);
    add({"-nic", nic});
  }
  if (!hw.display_device.empty()) add({"-device", hw.display_device});
  if (spec.display.kind == DisplayKind::kVnc) {
    // Loopback, the first free display from :0 (port 5900), unless told otherwise. On TCP,
    // every user of the host (or the network) can connect: a password is required, which
    // kvmrun sets over QMP before the guest runs. The Unix socket is in a 0700 directory.
    std::string vnc = "127.0.0.1:0,to=99,password=on";
    if (spec.display.listen == "unix") {
      vnc = "unix:" + EscapeQemuOptionValue(LocalPath(plan.display_socket));
    } else if (!spec.display.listen.empty()) {
      const std::size_t colon = spec.display.listen.rfind(':');
      vnc = spec.display.listen.substr(0, colon) + ":" +
            std::to_string(std::stoi(spec.display.listen.substr(colon + 1)) - 5900) +
            ",password=on";
    }
    add({"-vnc", vnc});
  } else if (spec.display.kind == DisplayKind::kSpice) {
    add({"-spice", "unix=on,addr=" + EscapeQemuOptionValue(LocalPath(plan.display_socket)) +
                       ",disable-ticketing=on"});
  }
  if (spec.no_reboot) add({"-no-reboot"});
  for (const std::string& dir : plan.firmware_dirs) add({"-L", LocalPath(dir)});
  for (const std::string& dir : spec.firmware_dirs) add({"-L", LocalPath(dir)});

  argv.insert(argv.end(), spec.extra_args.begin(), spec.extra_args.end());
  return argv;
}

}  // namespace kvmrun

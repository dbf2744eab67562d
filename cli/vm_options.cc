#include "cli/vm_options.h"

#include "kvmrun/error.h"
#include "kvmrun/hardware_profile.h"

namespace kvmrun::cli {

void AddGuestOptions(po::options_description& options) {
  auto os = po::value<std::string>()->value_name("OS")->default_value("linux");
  // clang-format off
  options.add_options()
      ("os", os, "guest OS: picks the clock policy ('kvmrun policy --list'; aliases such as\n"
                 "win11 or rhel5 work)")
      ("qemu", po::value<std::string>()->value_name("PATH"),
       "qemu-system-x86_64 to run (default: $KVMRUN_QEMU, then PATH)")
      ("accel", po::value<std::string>()->default_value("auto")->value_name("auto|kvm|tcg"),
       "auto: KVM when a probe guest proves it works, else TCG with a notice");
  // clang-format on
  AddOverrideOptions(options);
}

void ApplyGuestOptions(const po::variables_map& vm, VmSpec& spec) {
  spec.os = ParseGuestOs(vm["os"].as<std::string>());
  spec.clock_overrides = GetOverrides(vm);
  if (vm.count("qemu")) spec.qemu = vm["qemu"].as<std::string>();
  spec.accel = ParseAccelRequest(vm["accel"].as<std::string>());
}

void AddHardwareOptions(po::options_description& options) {
  // clang-format off
  options.add_options()
      ("machine", po::value<std::string>()->value_name("TYPE"),
       "machine type such as q35 or pc (default: QEMU's)")
      ("cpu", po::value<std::string>()->value_name("MODEL"),
       "CPU model (default: host under KVM, max under TCG)")
      ("memory,m", po::value<std::string>()->value_name("SIZE"),
       "guest memory: 512 (MiB), 512M, 2G (default: what the OS needs: 512M, 2G for\n"
       "Windows since Vista, 4G for Windows 11; 512M for any --kernel boot)")
      ("cpus", po::value<int>()->value_name("N"),
       "virtual CPUs (default: 1, 2 for Windows since Vista booted from disk)")
      ("firmware", po::value<std::string>()->value_name("bios|uefi|uefi-secure"),
       "bios: SeaBIOS; uefi: OVMF (Debian's ovmf), its variables kept with the VM;\n"
       "uefi-secure: OVMF with Secure Boot and Microsoft's keys, on q35 (default: the OS's,\n"
       "uefi-secure for a Windows 11 booted from disk, else bios; 'kvmrun policy --explain')")
      ("tpm", "a TPM 2.0 (swtpm, its state kept with the VM; default for Windows 11)")
      ("no-tpm", "no TPM, even where the OS would have one");
  // clang-format on
}

void ApplyHardwareOptions(const po::variables_map& vm, VmSpec& spec) {
  if (vm.count("machine")) spec.machine = vm["machine"].as<std::string>();
  if (vm.count("cpu")) spec.cpu_model = vm["cpu"].as<std::string>();
  const Sizing sizing = RecommendedSizing(spec.os, vm.count("kernel") > 0);
  spec.memory_mib =
      vm.count("memory") ? ParseMemorySize(vm["memory"].as<std::string>()) : sizing.memory_mib;
  spec.cpus = vm.count("cpus") ? vm["cpus"].as<int>() : sizing.cpus;
  if (vm.count("firmware"))
    spec.firmware = ParseFirmware(vm["firmware"].as<std::string>(), "--firmware");
  RejectConflicts(vm, {"tpm", "no-tpm"});
  if (vm.count("tpm")) spec.tpm = true;
  if (vm.count("no-tpm")) spec.tpm = false;
}

void AddPayloadOptions(po::options_description& options, bool snapshot_disks) {
  const char* disk_help =
      snapshot_disks
          ? "a disk image, attached with its writes discarded (repeatable). The format is raw,\n"
            "or qcow2 for a .qcow2 name, unless format=raw|qcow2 says otherwise: it is never\n"
            "guessed from the content, which the guest writes. A comma in FILE is written ,,"
          : "a disk image (repeatable). The format is raw, or qcow2 for a .qcow2 name, unless\n"
            "format=raw|qcow2 says otherwise: it is never guessed from the content, which the\n"
            "guest writes. bus=virtio|sata|ide|scsi (default: the OS's, sata for Windows,\n"
            "virtio for Linux). A comma in FILE is written ,,";
  // clang-format off
  options.add_options()
      ("kernel", po::value<std::string>()->value_name("FILE"), "boot this kernel directly")
      ("initrd", po::value<std::string>()->value_name("FILE"), "initramfs for --kernel")
      ("append", po::value<std::string>()->value_name("ARGS"),
       "kernel command line (console=ttyS0 for the serial console; panic=-1 makes a panic\n"
       "end the VM at once)")
      ("disk", po::value<std::vector<std::string>>()->value_name("FILE[,format=F][,bus=B]"),
       disk_help)
      ("share", po::value<std::vector<std::string>>()->value_name("DIR[,tag=T][,ro]"),
       "share a host directory over virtio-9p (repeatable); the guest mounts it with\n"
       "mount -t 9p -o trans=virtio,version=9p2000.L T /mnt (tag default: share0, share1...;\n"
       "a comma in DIR is written ,,)");
  // clang-format on
}

void ApplyPayloadOptions(const po::variables_map& vm, VmSpec& spec, bool snapshot_disks) {
  if (vm.count("kernel")) spec.kernel = vm["kernel"].as<std::string>();
  if (vm.count("initrd")) spec.initrd = vm["initrd"].as<std::string>();
  if (vm.count("append")) spec.append = vm["append"].as<std::string>();
  if (vm.count("disk")) {
    for (const std::string& arg : vm["disk"].as<std::vector<std::string>>()) {
      spec.disks.push_back(ParseDiskArgument(arg, false, snapshot_disks));
    }
  }
  if (vm.count("share")) {
    for (const std::string& arg : vm["share"].as<std::vector<std::string>>()) {
      spec.shares.push_back(ParseShareArgument(arg, spec.shares.size()));
    }
  }
}

}  // namespace kvmrun::cli

#include "kvmrun/qemu_command.h"

#include <gtest/gtest.h>

namespace kvmrun {
namespace {

using Argv = std::vector<std::string>;

LaunchPlan Plan(const VmSpec& spec, Accel accel, const std::string& qemu_version = "7.2") {
  LaunchPlan plan;
  plan.qemu = "/usr/bin/qemu-system-x86_64";
  plan.accel = accel;
  plan.cpu_model = std::string(DefaultCpuModel(accel));
  plan.clock = RenderClock(MakeClockPolicy(spec.os, spec.clock_overrides),
                           ShippedCapabilitiesFor(qemu_version), accel);
  plan.hardware = ResolveHardware(spec);
  return plan;
}

TEST(EscapeQemuOptionValueTest, DoublesCommas) {
  EXPECT_EQ(EscapeQemuOptionValue("a,b,,c"), "a,,b,,,,c");
  EXPECT_EQ(EscapeQemuOptionValue("plain path/x.img"), "plain path/x.img");
}

TEST(BuildQemuArgvTest, LinuxKernelBootUnderKvm) {
  VmSpec spec;
  spec.kernel = "/boot/vmlinuz";
  spec.initrd = "/boot/initrd.img";
  spec.append = "console=ttyS0 quiet";
  EXPECT_EQ(BuildQemuArgv(spec, Plan(spec, Accel::kKvm)), (Argv{"/usr/bin/qemu-system-x86_64",
                                                                "-name",
                                                                "guest=kvmrun",
                                                                "-nodefaults",
                                                                "-no-user-config",
                                                                "-display",
                                                                "none",
                                                                "-S",
                                                                "-accel",
                                                                "kvm",
                                                                "-m",
                                                                "512",
                                                                "-smp",
                                                                "1",
                                                                "-cpu",
                                                                "host",
                                                                "-global",
                                                                "kvm-pit.lost_tick_policy=discard",
                                                                "-rtc",
                                                                "base=utc,driftfix=slew",
                                                                "-machine",
                                                                "hpet=off",
                                                                "-chardev",
                                                                "socket,id=kvmrun-qmp,fd=3",
                                                                "-mon",
                                                                "chardev=kvmrun-qmp,mode=control",
                                                                "-chardev",
                                                                "socket,id=kvmrun-console,fd=4",
                                                                "-serial",
                                                                "chardev:kvmrun-console",
                                                                "-kernel",
                                                                "/boot/vmlinuz",
                                                                "-initrd",
                                                                "/boot/initrd.img",
                                                                "-append",
                                                                "console=ttyS0 quiet"}));
}

TEST(BuildQemuArgvTest, WindowsUnderTcgDropsKvmOnlySettings) {
  VmSpec spec;
  spec.os = GuestOs::kWindows11;
  spec.memory_mib = 4096;
  spec.cpus = 2;
  spec.machine = "q35";
  const Argv argv = BuildQemuArgv(spec, Plan(spec, Accel::kTcg));
  const Argv expected_head = {"/usr/bin/qemu-system-x86_64",
                              "-name",
                              "guest=kvmrun",
                              "-nodefaults",
                              "-no-user-config",
                              "-display",
                              "none",
                              "-S",
                              "-machine",
                              "q35",
                              "-accel",
                              "tcg",
                              "-m",
                              "4096",
                              "-smp",
                              "2",
                              "-cpu",
                              "max",
                              "-rtc",
                              "base=localtime,driftfix=slew",
                              "-machine",
                              "hpet=off",
                              "-chardev"};
  EXPECT_EQ(Argv(argv.begin(), argv.begin() + expected_head.size()), expected_head);
  for (const std::string& arg : argv) {
    EXPECT_EQ(arg.find("kvm-pit"), std::string::npos) << arg;
    EXPECT_EQ(arg.find("hv-time"), std::string::npos) << arg;
  }
}

TEST(BuildQemuArgvTest, WindowsUnderKvmGetsTheHypervClockOnTheCpu) {
  VmSpec spec;
  spec.os = GuestOs::kWindows10;
  const Argv argv = BuildQemuArgv(spec, Plan(spec, Accel::kKvm));
  const auto cpu = std::find(argv.begin(), argv.end(), "-cpu");
  ASSERT_NE(cpu, argv.end());
  EXPECT_EQ(*(cpu + 1),
            "host,hv-time,hv-relaxed,hv-vapic,hv-spinlocks=0x1fff,hv-vpindex,hv-runtime,hv-reset,"
            "hv-frequencies,hv-tlbflush,hv-synic,hv-stimer,hv-ipi");
}

TEST(BuildQemuArgvTest, DisksCdromNetworkSocketFirmwareAndExtraArgsLast) {
  VmSpec spec;
  spec.disks = {ParseDiskArgument("/vm/a,,b c.qcow2", false, false),
                ParseDiskArgument("/vm/ro.img", true, true)};
  spec.cdroms = {"/iso/x,y.iso"};
  spec.network = true;
  spec.no_reboot = true;
  spec.qmp_socket = "/run/vm,1/qmp.sock";
  spec.firmware_dirs = {"/opt/fw"};
  spec.extra_args = {"-rtc", "base=localtime"};
  spec.clock_overrides.rtc_clock = RtcClock::kVm;
  LaunchPlan plan = Plan(spec, Accel::kKvm);
  plan.firmware_dirs = {"/opt/qemu/share/qemu"};
  const Argv argv = BuildQemuArgv(spec, plan);
  const Argv tail(argv.end() - 27, argv.end());
  EXPECT_EQ(
      tail,
      (Argv{"-chardev", "socket,id=kvmrun-qmp-public,path=/run/vm,,1/qmp.sock,server=on,wait=off",
            "-mon", "chardev=kvmrun-qmp-public,mode=control",
            // Linux: virtio disks, and the firmware tries them in order, then the cdrom.
            "-drive",
            "file.driver=file,file.filename=/vm/a,,b c.qcow2,format=qcow2,if=none,id=kvmrun-disk0",
            "-device", "virtio-blk-pci,drive=kvmrun-disk0,bootindex=0", "-drive",
            "file.driver=file,file.filename=/vm/ro.img,format=raw,readonly=on,snapshot=on,"
            "if=none,id=kvmrun-disk1",
            "-device", "virtio-blk-pci,drive=kvmrun-disk1,bootindex=1", "-drive",
            "file.driver=file,file.filename=/iso/x,,y.iso,format=raw,media=cdrom,readonly=on,"
            "if=none,id=kvmrun-cd0",
            "-device", "ich9-ahci,id=kvmrun-ahci", "-device",
            "ide-cd,bus=kvmrun-ahci.0,drive=kvmrun-cd0,bootindex=2", "-nic",
            "user,model=virtio-net-pci", "-no-reboot", "-L", "/opt/qemu/share/qemu", "-L",
            "/opt/fw", "-rtc", "base=localtime"}));
  EXPECT_NE(std::find(argv.begin(), argv.end(), "base=utc,clock=vm,driftfix=slew"), argv.end());
}

// User values never turn into QEMU options of their own: a name with '=' and ',', relative
// paths that look like protocols, values that start with '-'.
TEST(BuildQemuArgvTest, NamesAndPathsStayOneValue) {
  VmSpec spec;
  spec.name = "db=primary,process=evil";
  spec.kernel = "-daemonize";
  spec.initrd = "nbd:host:10809";
  spec.disks = {ParseDiskArgument("json:{\"driver\":\"null-co\"}", false, false),
                ParseDiskArgument("vm-12:00.img", false, false)};
  spec.qmp_socket = "q,m.sock";
  const Argv argv = BuildQemuArgv(spec, Plan(spec, Accel::kTcg));
  const auto after = [&](const std::string& option, int nth = 0) {
    for (auto it = argv.begin(); it != argv.end(); ++it) {
      if (*it == option && nth-- == 0) return *(it + 1);
    }
    return std::string("(missing)");
  };
  EXPECT_EQ(after("-name"), "guest=db=primary,,process=evil");
  EXPECT_EQ(after("-kernel"), "./-daemonize");
  EXPECT_EQ(after("-initrd"), "./nbd:host:10809");
  EXPECT_EQ(after("-drive", 0),
            "file.driver=file,file.filename=./json:{\"driver\":\"null-co\"},format=raw,if=none,"
            "id=kvmrun-disk0");
  EXPECT_EQ(after("-drive", 1),
            "file.driver=file,file.filename=./vm-12:00.img,format=raw,if=none,id=kvmrun-disk1");
  EXPECT_EQ(after("-chardev", 2),
            "socket,id=kvmrun-qmp-public,path=./q,,m.sock,server=on,wait=off");
  EXPECT_EQ(LocalPath("/abs"), "/abs");
  EXPECT_EQ(LocalPath("rel:x"), "./rel:x");
}

TEST(BuildQemuArgvTest, TheGuestAgentPortListensOnItsSocketUnlessTurnedOff) {
  VmSpec spec;
  LaunchPlan plan = Plan(spec, Accel::kTcg);
  plan.agent_socket = "/run/user/1000/kvmrun-1-abc,def/agent.sock";
  const Argv argv = BuildQemuArgv(spec, plan);
  const Argv expected = {"-device",
                         "virtio-serial-pci,id=kvmrun-serial",
                         "-chardev",
                         "socket,id=kvmrun-agent,path=/run/user/1000/kvmrun-1-abc,,def/"
                         "agent.sock,server=on,wait=off",
                         "-device",
                         "virtserialport,bus=kvmrun-serial.0,chardev=kvmrun-agent,name=org.qemu."
                         "guest_agent.0"};
  EXPECT_NE(std::search(argv.begin(), argv.end(), expected.begin(), expected.end()), argv.end());
  spec.agent = false;
  const Argv without = BuildQemuArgv(spec, plan);
  EXPECT_EQ(std::find(without.begin(), without.end(), "virtio-serial-pci,id=kvmrun-serial"),
            without.end());
}

TEST(BuildQemuArgvTest, SharesAre9pWithTheirTagsAndEscapedPaths) {
  VmSpec spec;
  spec.shares = {{"/src/a,b c", "src", false}, {"/data", "data", true}};
  const Argv argv = BuildQemuArgv(spec, Plan(spec, Accel::kTcg));
  const Argv expected = {
      "-fsdev",  "local,id=kvmrun-fs0,path=/src/a,,b c,security_model=none",
      "-device", "virtio-9p-pci,fsdev=kvmrun-fs0,mount_tag=src",
      "-fsdev",  "local,id=kvmrun-fs1,path=/data,security_model=none,readonly=on",
      "-device", "virtio-9p-pci,fsdev=kvmrun-fs1,mount_tag=data"};
  EXPECT_NE(std::search(argv.begin(), argv.end(), expected.begin(), expected.end()), argv.end());
}

TEST(BuildQemuArgvTest, KernelPathsAreNotEscaped) {
  VmSpec spec;
  spec.kernel = "/k,1/vmlinuz";
  spec.append = "a=b,c";
  const Argv argv = BuildQemuArgv(spec, Plan(spec, Accel::kKvm));
  EXPECT_NE(std::find(argv.begin(), argv.end(), "/k,1/vmlinuz"), argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "a=b,c"), argv.end());
}

// A Linux kernel booted under TCG gets no_timer_check (a starved vCPU fails the timer check and
// panics: 20 guests on 2 cores did), once; under KVM, or for another OS, the line is the user's.
TEST(BuildQemuArgvTest, TcgLinuxKernelBootsSkipTheTimerCheck) {
  VmSpec spec;
  spec.kernel = "/boot/vmlinuz";
  spec.append = "console=ttyS0";
  EXPECT_EQ(KernelCommandLine(spec, Accel::kTcg), "console=ttyS0 no_timer_check");
  EXPECT_EQ(KernelCommandLine(spec, Accel::kKvm), "console=ttyS0");
  spec.append = "no_timer_check console=ttyS0";
  EXPECT_EQ(KernelCommandLine(spec, Accel::kTcg), "no_timer_check console=ttyS0");
  spec.append = "";
  EXPECT_EQ(KernelCommandLine(spec, Accel::kTcg), "no_timer_check");
  spec.os = GuestOs::kWindows11;
  EXPECT_EQ(KernelCommandLine(spec, Accel::kTcg), "");
  spec.os = GuestOs::kLinux;
  spec.kernel.clear();  // a disk boot: its bootloader owns the command line
  EXPECT_EQ(KernelCommandLine(spec, Accel::kTcg), "");
  const Argv argv = BuildQemuArgv(spec, Plan(spec, Accel::kTcg));
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "-append"), argv.end());
}

// The argv the README's Windows 11 install line makes, on each QEMU version and accelerator:
// the hardware is the same everywhere (only the clock part is rendered per version).
class Windows11ArgvTest : public ::testing::TestWithParam<std::tuple<const char*, Accel>> {};

TEST_P(Windows11ArgvTest, UefiSecureBootTpmSataE1000eAndVnc) {
  const auto [version, accel] = GetParam();
  VmSpec spec;
  spec.os = GuestOs::kWindows11;
  spec.disks = {ParseDiskArgument("/vm/win11.qcow2", false, false)};
  spec.cdroms = {"/iso/Win11.iso", "/iso/virtio-win.iso"};
  spec.network = true;
  spec.display = ParseDisplayArgument("vnc");
  LaunchPlan plan = Plan(spec, accel, version);
  plan.firmware_code = "/usr/share/OVMF/OVMF_CODE_4M.ms.fd";
  plan.firmware_vars = "/state/w11/uefi-secure-vars.fd";
  plan.firmware_requires_smm = true;
  plan.tpm_socket = "/run/k/swtpm.sock";
  const Argv argv = BuildQemuArgv(spec, plan);
  const Argv head = {
      "-S", "-machine", "q35", "-machine", "smm=on", "-accel", std::string(ToString(accel))};
  EXPECT_NE(std::search(argv.begin(), argv.end(), head.begin(), head.end()), argv.end());
  const auto serial = std::find(argv.begin(), argv.end(), "chardev:kvmrun-console");
  ASSERT_NE(serial, argv.end());
  EXPECT_EQ(
      Argv(serial + 1, argv.end()),
      (Argv{"-drive",
            "file.driver=file,file.filename=/usr/share/OVMF/OVMF_CODE_4M.ms.fd,format=raw,"
            "if=pflash,unit=0,readonly=on",
            "-drive",
            "file.driver=file,file.filename=/state/w11/uefi-secure-vars.fd,format=raw,if=pflash,"
            "unit=1",
            "-global",
            "driver=cfi.pflash01,property=secure,value=on",
            "-drive",
            "file.driver=file,file.filename=/vm/win11.qcow2,format=qcow2,if=none,id=kvmrun-disk0",
            "-device",
            "ich9-ahci,id=kvmrun-ahci",
            "-device",
            "ide-hd,bus=kvmrun-ahci.0,drive=kvmrun-disk0,bootindex=0",
            "-drive",
            "file.driver=file,file.filename=/iso/Win11.iso,format=raw,media=cdrom,readonly=on,"
            "if=none,id=kvmrun-cd0",
            "-device",
            "ide-cd,bus=kvmrun-ahci.1,drive=kvmrun-cd0,bootindex=1",
            "-drive",
            "file.driver=file,file.filename=/iso/virtio-win.iso,format=raw,media=cdrom,"
            "readonly=on,if=none,id=kvmrun-cd1",
            "-device",
            "ide-cd,bus=kvmrun-ahci.2,drive=kvmrun-cd1,bootindex=2",
            "-chardev",
            "socket,id=kvmrun-tpm,path=/run/k/swtpm.sock",
            "-tpmdev",
            "emulator,id=kvmrun-tpm0,chardev=kvmrun-tpm",
            "-device",
            "tpm-tis,tpmdev=kvmrun-tpm0",
            "-nic",
            "user,model=e1000e",
            "-device",
            "VGA",
            "-vnc",
            "127.0.0.1:0,to=99,password=on"}));
}

INSTANTIATE_TEST_SUITE_P(QemuVersionsAndAccels, Windows11ArgvTest,
                         ::testing::Combine(::testing::Values("7.2", "10.0"),
                                            ::testing::Values(Accel::kKvm, Accel::kTcg)),
                         [](const auto& info) {
                           std::string name = std::string("qemu") + std::get<0>(info.param) + "_" +
                                              std::string(ToString(std::get<1>(info.param)));
                           std::replace(name.begin(), name.end(), '.', '_');
                           return name;
                         });

// What follows the console's -serial: the options under test, nothing else (no agent socket).
Argv HardwareTail(const VmSpec& spec, const LaunchPlan& plan) {
  const Argv argv = BuildQemuArgv(spec, plan);
  const auto serial = std::find(argv.begin(), argv.end(), "chardev:kvmrun-console");
  return Argv(serial + 1, argv.end());
}

TEST(BuildQemuArgvTest, CdromFirstIdeAndScsiBusesAndNoBootOrderForAKernel) {
  VmSpec spec;
  spec.os = GuestOs::kWindowsXp;  // ide for disks and cdroms
  spec.disks = {ParseDiskArgument("/a.img", false, false),
                ParseDiskArgument("/b.img,bus=scsi", false, false)};
  spec.cdroms = {"/xp.iso"};
  spec.boot_from = BootFrom::kCdrom;
  EXPECT_EQ(
      HardwareTail(spec, Plan(spec, Accel::kTcg)),
      (Argv{"-drive",
            "file.driver=file,file.filename=/xp.iso,format=raw,media=cdrom,readonly=on,if=none,"
            "id=kvmrun-cd0",
            "-device", "ide-cd,drive=kvmrun-cd0,bootindex=0", "-drive",
            "file.driver=file,file.filename=/a.img,format=raw,if=none,id=kvmrun-disk0", "-device",
            "ide-hd,drive=kvmrun-disk0,bootindex=1", "-drive",
            "file.driver=file,file.filename=/b.img,format=raw,if=none,id=kvmrun-disk1", "-device",
            "virtio-scsi-pci,id=kvmrun-scsi", "-device",
            "scsi-hd,bus=kvmrun-scsi.0,drive=kvmrun-disk1,bootindex=2"}));

  // A kernel from the host boots first whatever the disks are: no bootindex.
  spec.kernel = "/vmlinuz";
  spec.cdroms.clear();
  spec.disks.pop_back();
  EXPECT_EQ(HardwareTail(spec, Plan(spec, Accel::kTcg)),
            (Argv{"-kernel", "/vmlinuz", "-drive",
                  "file.driver=file,file.filename=/a.img,format=raw,if=none,id=kvmrun-disk0",
                  "-device", "ide-hd,drive=kvmrun-disk0"}));
}

TEST(BuildQemuArgvTest, DisplaysForwardsAndNicModels) {
  VmSpec spec;
  spec.forwards = {ParseForwardArgument("tcp:2222:22"), ParseForwardArgument("udp:0.0.0.0:53:53")};
  spec.nic_model = NicModel::kRtl8139;
  spec.display = ParseDisplayArgument("vnc=0.0.0.0:5901");
  LaunchPlan plan = Plan(spec, Accel::kKvm);
  EXPECT_EQ(
      HardwareTail(spec, plan),
      (Argv{"-nic", "user,model=rtl8139,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp:0.0.0.0:53-:53",
            "-device", "virtio-vga", "-vnc", "0.0.0.0:1,password=on"}));

  spec.forwards.clear();
  spec.display = ParseDisplayArgument("vnc=unix");
  plan = Plan(spec, Accel::kKvm);
  plan.display_socket = "/run/k,1/vnc.sock";
  EXPECT_EQ(HardwareTail(spec, plan),
            (Argv{"-device", "virtio-vga", "-vnc", "unix:/run/k,,1/vnc.sock"}));

  spec.display = ParseDisplayArgument("spice");
  plan = Plan(spec, Accel::kKvm);
  plan.display_socket = "/run/k/spice.sock";
  EXPECT_EQ(HardwareTail(spec, plan),
            (Argv{"-device", "qxl-vga", "-spice",
                  "unix=on,addr=/run/k/spice.sock,disable-ticketing=on"}));

  spec.display = ParseDisplayArgument("gtk");
  const Argv argv = BuildQemuArgv(spec, Plan(spec, Accel::kKvm));
  EXPECT_EQ(std::vector<std::string>(argv.begin() + 5, argv.begin() + 7),
            (Argv{"-display", "gtk"}));
  EXPECT_EQ(HardwareTail(spec, Plan(spec, Accel::kKvm)), (Argv{"-device", "virtio-vga"}));
}

}  // namespace
}  // namespace kvmrun

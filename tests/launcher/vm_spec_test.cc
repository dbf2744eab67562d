#include "kvmrun/vm_spec.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "kvmrun/error.h"
#include "kvmrun/hardware_profile.h"
#include "tests/support/qemu_process.h"

namespace kvmrun {
namespace {

TEST(ParseMemorySizeTest, AcceptsCommonForms) {
  EXPECT_EQ(ParseMemorySize("512"), 512u);
  EXPECT_EQ(ParseMemorySize("512M"), 512u);
  EXPECT_EQ(ParseMemorySize("512m"), 512u);
  EXPECT_EQ(ParseMemorySize("512MiB"), 512u);
  EXPECT_EQ(ParseMemorySize("2G"), 2048u);
  EXPECT_EQ(ParseMemorySize("2GB"), 2048u);
  EXPECT_EQ(ParseMemorySize("1024K"), 1u);
  EXPECT_EQ(ParseMemorySize("1T"), 1u << 20);
}

TEST(ParseMemorySizeTest, RejectsWithOptionValueAndValidForms) {
  for (const char* bad :
       {"0", "abc", "", "512X", "-1", "1.5G", "512K", "1000K", "M", "99999999999999999999"}) {
    try {
      ParseMemorySize(bad);
      ADD_FAILURE() << bad;
    } catch (const UsageError& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind(std::string("memory_mib: invalid value '") + bad + "'", 0), 0u)
          << message;
      EXPECT_NE(message.find("valid: a size such as 512 (MiB), 512M, 2G"), std::string::npos);
    }
  }
}

class ValidateVmSpecTest : public ::testing::Test {
 protected:
  std::string File(const std::string& name, const std::string& content = "x") {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << content;
    return path;
  }
  void ExpectUsageError(const VmSpec& spec, const std::string& expected) {
    try {
      ValidateVmSpec(spec);
      ADD_FAILURE() << "no error; expected: " << expected;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
  testing::TempDir dir_;
};

TEST_F(ValidateVmSpecTest, AcceptsAPlainKernelBoot) {
  VmSpec spec;
  spec.kernel = File("vmlinuz");
  spec.initrd = File("initrd");
  spec.append = "console=ttyS0";
  EXPECT_NO_THROW(ValidateVmSpec(spec));
}

TEST_F(ValidateVmSpecTest, PathsWithCommasSpacesQuotesAndNewlinesAreFine) {
  VmSpec spec;
  spec.kernel = File("a,b c'd\"e\nf");
  spec.disks.push_back({.path = File("disk, 1.img")});
  EXPECT_NO_THROW(ValidateVmSpec(spec));
}

TEST_F(ValidateVmSpecTest, NamesTheFirstProblem) {
  VmSpec spec;
  spec.cpus = 0;
  ExpectUsageError(spec, "cpus: invalid value '0'; valid: 1 to 1024");
  spec = {};
  spec.memory_mib = 1u << 30;
  ExpectUsageError(spec, "MiB is more than this host's");
  spec = {};
  spec.kernel = dir_.path() + "/missing";
  ExpectUsageError(spec, "kernel: '" + dir_.path() + "/missing': No such file or directory");
  spec = {};
  spec.kernel = dir_.path();
  ExpectUsageError(spec, "is a directory");
  spec = {};
  spec.initrd = File("initrd");
  ExpectUsageError(spec, "kernel: an initrd or a kernel command line needs a kernel");
  spec = {};
  spec.disks.push_back({.path = dir_.path() + "/nope.img"});
  ExpectUsageError(spec, "disks: '" + dir_.path() + "/nope.img'");
  spec = {};
  spec.cdroms = {"/dev/null"};
  ExpectUsageError(spec, "cdrom: '/dev/null' is not a regular file");
  spec = {};
  spec.qmp_socket = "/tmp/" + std::string(120, 's');
  ExpectUsageError(spec, "qmp_socket: the path is 125 bytes");
  spec = {};
  spec.name = "";
  ExpectUsageError(spec, "name: the VM name must not be empty");
  spec = {};
  spec.machine = "q35,accel=kvm";
  ExpectUsageError(spec, "machine: invalid value 'q35,accel=kvm'");
  spec = {};
  spec.cpu_model = "max,+vmx";
  ExpectUsageError(spec, "cpu_model: invalid value 'max,+vmx'");
  spec = {};
  spec.firmware_dirs = {""};  // found by the argv fuzzer: it became `-L ''`
  ExpectUsageError(spec, "firmware_dirs: '' is not a directory");
  spec = {};
  spec.extra_args = {"-m", "1G", "--daemonize"};
  ExpectUsageError(spec, "extra_args: '--daemonize' would detach QEMU from kvmrun");
}

// The format comes from the user or the file name, never from the content a guest writes.
TEST_F(ValidateVmSpecTest, DiskFormatIsNeverTakenFromTheContent) {
  const std::string raw_with_header = File("disk.img", std::string("QFI\xfb\0\0\0\3", 8));
  const DiskSpec disk = ParseDiskArgument(raw_with_header, false, false);
  EXPECT_EQ(disk.format, DiskFormat::kRaw);
  EXPECT_FALSE(disk.format_given);
  EXPECT_TRUE(HasQcow2Header(raw_with_header));
  EXPECT_FALSE(HasQcow2Header(File("plain.img", std::string(512, '\0'))));
  EXPECT_FALSE(HasQcow2Header(dir_.path() + "/none"));

  EXPECT_EQ(ParseDiskArgument("/images/base.QCOW2", false, false).format, DiskFormat::kQcow2);
  const DiskSpec given = ParseDiskArgument("/images/x.img,format=qcow2", true, true);
  EXPECT_EQ(given.path, "/images/x.img");
  EXPECT_EQ(given.format, DiskFormat::kQcow2);
  EXPECT_TRUE(given.format_given && given.read_only && given.snapshot);
  EXPECT_EQ(ParseDiskArgument("/a,,b.qcow2,format=raw", false, false).path, "/a,b.qcow2");
  EXPECT_EQ(ParseDiskArgument("/a,,b.qcow2,format=raw", false, false).format, DiskFormat::kRaw);
  EXPECT_EQ(ParseDiskArgument("vm-12:00.img", false, false).path, "vm-12:00.img");
  EXPECT_EQ(ParseDiskArgument("/x.img,bus=sata", false, false).bus, DiskBus::kSata);
  EXPECT_FALSE(ParseDiskArgument("/x.img", false, false).bus.has_value());
  for (const char* bad : {"", ",format=raw", "/x.img,format=vmdk", "/x.img,bus=usb",
                          "/x.img,virtio", "/disk,1.img"}) {
    SCOPED_TRACE(bad);
    try {
      ParseDiskArgument(bad, false, false);
      FAIL() << "accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(
          std::string(e.what()).find("valid: FILE[,format=raw|qcow2][,bus=virtio|sata|ide|scsi]"),
          std::string::npos)
          << e.what();
    }
  }
}

// An installer's cdrom boots first on a new disk, and never on a disk that holds a system.
TEST_F(ValidateVmSpecTest, TheCdromBootsFirstOnlyWhenEveryDiskIsBlank) {
  const auto file = [&](const std::string& name, const std::string& bytes) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  };
  const std::string zeros(2 << 20, '\0');
  std::string mbr = zeros;
  mbr[510] = '\x55';
  mbr[511] = '\xaa';
  // qcow2 headers: magic, version 3, no backing file, L1 table of 2 entries at 4096.
  const auto qcow2 = [&](const std::string& name, std::uint64_t l1_entry, bool backing) {
    std::string bytes(8192, '\0');
    bytes.replace(0, 4, "QFI\xfb");
    bytes[7] = 3;
    if (backing) bytes[15] = 0x70;  // a backing file name at 0x70
    bytes[39] = 2;                  // l1_size
    bytes[46] = 0x10;               // l1_table_offset 4096
    for (int i = 0; i < 8; ++i) bytes[4096 + i] = static_cast<char>(l1_entry >> (56 - 8 * i));
    return file(name, bytes);
  };
  const auto disk = [](const std::string& path) { return ParseDiskArgument(path, false, false); };
  EXPECT_TRUE(DiskIsBlank(disk(file("empty.img", ""))));
  EXPECT_TRUE(DiskIsBlank(disk(file("new.img", zeros))));
  EXPECT_FALSE(DiskIsBlank(disk(file("mbr.img", mbr))));
  EXPECT_TRUE(DiskIsBlank(disk(qcow2("new.qcow2", 0, false))));
  EXPECT_FALSE(DiskIsBlank(disk(qcow2("used.qcow2", 0x8000000000050000ULL, false))));
  EXPECT_FALSE(DiskIsBlank(disk(qcow2("overlay.qcow2", 0, true))));
  EXPECT_FALSE(DiskIsBlank(disk(dir_.path() + "/missing.img")));
  // A FIFO named as a disk is not opened for reading as a file is (that open would block until
  // a writer came): not blank, no qcow2 header, at once.
  const std::string fifo = dir_.path() + "/fifo.img";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_FALSE(DiskIsBlank(disk(fifo)));
  EXPECT_FALSE(HasQcow2Header(fifo));

  VmSpec spec;
  spec.os = GuestOs::kWindows11;
  spec.cdroms = {file("win.iso", "CD001")};
  spec.disks = {disk(dir_.path() + "/new.img")};
  HardwareProfile hw = ResolveHardware(spec);
  ResolveBootOrder(spec, hw);
  EXPECT_EQ(hw.boot_from, BootFrom::kCdrom) << hw.boot_reason;
  EXPECT_NE(hw.boot_reason.find("blank"), std::string::npos) << hw.boot_reason;
  spec.disks.push_back(disk(dir_.path() + "/mbr.img"));
  hw = ResolveHardware(spec);
  ResolveBootOrder(spec, hw);
  EXPECT_EQ(hw.boot_from, BootFrom::kDisk) << hw.boot_reason;
  // Asked for: as asked, whatever the disks hold.
  spec.boot_from = BootFrom::kCdrom;
  hw = ResolveHardware(spec);
  ResolveBootOrder(spec, hw);
  EXPECT_EQ(hw.boot_from, BootFrom::kCdrom);
  EXPECT_EQ(hw.boot_reason, "asked for");
}

TEST_F(ValidateVmSpecTest, SharesNeedADirectoryAndUniqueTags) {
  const ShareSpec plain = ParseShareArgument("/src/my,,project", 0);
  EXPECT_EQ(plain.host_dir, "/src/my,project");
  EXPECT_EQ(plain.tag, "share0");
  EXPECT_FALSE(plain.read_only);
  const ShareSpec tagged = ParseShareArgument("/data,tag=data,ro", 3);
  EXPECT_EQ(tagged.tag, "data");
  EXPECT_TRUE(tagged.read_only);
  for (const char* bad : {"", ",ro", "/x,tag=", "/x,tag=a b",
                          "/x,tag="
                          "0123456789012345678901234567890123",
                          "/x,rw"}) {
    EXPECT_THROW(ParseShareArgument(bad, 0), UsageError) << bad;
  }
  VmSpec spec;
  spec.shares = {{dir_.path(), "a", false}, {dir_.path(), "a", true}};
  ExpectUsageError(spec, "shares: the tag 'a' is used twice");
  spec.shares = {{File("not-a-dir"), "a", false}};
  ExpectUsageError(spec, "is not a directory");
}

TEST(QemuNamesTest, ModelNamesCannotCarryOptions) {
  for (const char* ok : {"q35", "pc-i440fx-7.2", "max", "Skylake-Client-v4", "EPYC_x"}) {
    EXPECT_TRUE(IsQemuModelName(ok)) << ok;
  }
  for (const char* bad : {"", "q35,hpet=on", "-daemonize", "max=1", "a b", "help\n"}) {
    EXPECT_FALSE(IsQemuModelName(bad)) << bad;
  }
  EXPECT_EQ(FindDetachingOption({"-daemonize"}), "-daemonize");
  EXPECT_EQ(FindDetachingOption({"-name", "daemonize"}), "");
  EXPECT_EQ(FindDetachingOption({"-S", "--daemonize"}), "--daemonize");
}

// QEMU deletes whatever is at the path of a server socket before binding: a regular file, a
// link, or a live socket would be destroyed or stolen.
TEST_F(ValidateVmSpecTest, PublicSocketPathMustBeFreeOrAStaleSocket) {
  VmSpec spec;
  spec.qmp_socket = File("precious.txt", "keep me");
  ExpectUsageError(spec, "exists and is not a socket; QEMU would delete it");
  spec.qmp_socket = dir_.path() + "/link.sock";
  ASSERT_EQ(symlink("/etc/passwd", spec.qmp_socket.c_str()), 0);
  ExpectUsageError(spec, "exists and is not a socket");

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string live = dir_.path() + "/live.sock";
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", live.c_str());
  const int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(server, 1), 0);
  spec.qmp_socket = live;
  ExpectUsageError(spec, "is in use: a running program listens on it");
  close(server);  // the socket file stays, with nobody listening: stale, and free to reuse
  EXPECT_NO_THROW(ValidateVmSpec(spec));
  spec.qmp_socket = dir_.path() + "/absent.sock";
  EXPECT_NO_THROW(ValidateVmSpec(spec));
}

TEST(WithAbsolutePathsTest, EveryPathBecomesAbsolute) {
  VmSpec spec;
  spec.kernel = "vm-12:00/vmlinuz";
  spec.initrd = "/boot/initrd";
  spec.disks.push_back({.path = "json:{}.img"});
  spec.cdroms = {"nbd:host.iso"};
  spec.qmp_socket = "q.sock";
  spec.firmware_dirs = {"fw"};
  const std::string cwd = std::filesystem::current_path().string();
  const VmSpec out = WithAbsolutePaths(spec);
  EXPECT_EQ(out.kernel, cwd + "/vm-12:00/vmlinuz");
  EXPECT_EQ(out.initrd, "/boot/initrd");
  EXPECT_EQ(out.disks[0].path, cwd + "/json:{}.img");
  EXPECT_EQ(out.cdroms.at(0), cwd + "/nbd:host.iso");
  EXPECT_EQ(out.qmp_socket, cwd + "/q.sock");
  EXPECT_EQ(out.firmware_dirs[0], cwd + "/fw");
}

TEST(AccelRequestTest, ParsesAndRejects) {
  EXPECT_EQ(ParseAccelRequest("AUTO"), AccelRequest::kAuto);
  EXPECT_EQ(ParseVerifyMode("warn"), VerifyMode::kWarn);
  try {
    ParseVerifyMode("strict");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "verify: invalid value 'strict'; valid: off, warn, enforce");
  }
}

TEST(HardwareArgumentsTest, DisplaysParseAndBadOnesNameTheValidForms) {
  EXPECT_EQ(ParseDisplayArgument("none").kind, DisplayKind::kNone);
  EXPECT_EQ(ParseDisplayArgument("VNC").kind, DisplayKind::kVnc);
  EXPECT_EQ(ParseDisplayArgument("vnc").listen, "");
  EXPECT_EQ(ParseDisplayArgument("vnc=unix").listen, "unix");
  EXPECT_EQ(ParseDisplayArgument("vnc=0.0.0.0:5901").listen, "0.0.0.0:5901");
  EXPECT_EQ(ParseDisplayArgument("vnc=localhost:6000").listen, "localhost:6000");
  EXPECT_EQ(ParseDisplayArgument("spice").kind, DisplayKind::kSpice);
  EXPECT_EQ(ParseDisplayArgument("gtk").kind, DisplayKind::kGtk);
  for (const char* bad : {"sdl", "vnc=", "vnc=:5900", "vnc=127.0.0.1:80", "vnc=127.0.0.1:65536",
                          "vnc=host,to=9:5900", "vnc=1.2.3:5900", "spice=unix", "vnc=unixx"}) {
    SCOPED_TRACE(bad);
    try {
      ParseDisplayArgument(bad, "--display");
      FAIL() << "accepted";
    } catch (const UsageError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind(std::string("--display: invalid value '") + bad + "'", 0), 0u) << what;
      EXPECT_NE(what.find("valid: none, vnc, vnc=unix, vnc=ADDR:PORT"), std::string::npos) << what;
    }
  }
}

TEST(HardwareArgumentsTest, ForwardsParseToQemusHostfwdOnLoopbackUnlessTold) {
  const PortForward ssh = ParseForwardArgument("tcp:2222:22");
  EXPECT_EQ(ToString(ssh), "tcp:127.0.0.1:2222-:22");
  EXPECT_EQ(ToString(ParseForwardArgument("8080:80")), "tcp:127.0.0.1:8080-:80");
  EXPECT_EQ(ToString(ParseForwardArgument("udp:0.0.0.0:5353:53")), "udp:0.0.0.0:5353-:53");
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackAddress("localhost"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0"));
  for (const char* bad : {"", "22", "tcp:22", "sctp:1:2", "tcp:0:22", "tcp:2222:70000",
                          "tcp:x:2222:22", "tcp:2222:22,hostfwd=tcp::1-:2", "1:2:3:4:5"}) {
    SCOPED_TRACE(bad);
    try {
      ParseForwardArgument(bad, "--forward");
      FAIL() << "accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("valid: [tcp:|udp:][ADDR:]HOSTPORT:GUESTPORT"),
                std::string::npos)
          << e.what();
    }
  }
  VmSpec spec;
  spec.forwards = {ssh, ParseForwardArgument("2222:2")};
  try {
    ValidateVmSpec(spec);
    FAIL() << "a host port forwarded twice";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "forwards: host port tcp:2222 is forwarded twice");
  }
}

TEST(HardwareArgumentsTest, FirmwareAndNicModelsByName) {
  EXPECT_EQ(ParseFirmware("UEFI-secure"), Firmware::kUefiSecure);
  EXPECT_EQ(ParseNicModel("e1000e"), NicModel::kE1000e);
  try {
    ParseFirmware("coreboot", "--firmware");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "--firmware: invalid value 'coreboot'; valid: bios, uefi, uefi-secure");
  }
}

}  // namespace
}  // namespace kvmrun

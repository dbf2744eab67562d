// What a VM a person runs on a host needs besides its clock, on a real QEMU under TCG: UEFI
// (the test guest's kernel started by OVMF as an EFI program), a TPM 2.0 from swtpm that never
// outlives its VM, disks on virtio, sata and a cdrom, a port forwarded into the guest, a VNC
// server a client can shake hands with, and the Windows 11 command line QEMU accepts and whose
// firmware enforces Secure Boot.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "kvmrun/error.h"
#include "kvmrun/vm.h"
#include "tests/support/kvmrun_process.h"
#include "tests/support/qemu_binary.h"
#include "tests/support/qemu_process.h"
#include "tests/support/test_guest.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
using Outcome = ConsoleMatch::Outcome;

// The processes called `name` whose parent is `parent`.
std::vector<pid_t> ChildrenNamed(pid_t parent, const std::string& name) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...
    const std::size_t open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    const std::string comm = line.substr(open + 1, close - open - 1);
    char state = 0;
    int ppid = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) != 2) continue;
    if (comm == name && ppid == parent && state != 'Z') found.push_back(std::stoi(pid));
  }
  return found;
}

// Whether `pid` has ended (gone, or a zombie nobody reaped yet), waiting up to `timeout`.
bool Ended(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return true;
    const std::size_t close = line.rfind(')');
    if (close != std::string::npos && line.size() > close + 2 && line[close + 2] == 'Z') {
      return true;
    }
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

class HardwareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    qemu_ = testing::TestQemuBinary();
    if (qemu_.empty()) GTEST_SKIP() << "qemu-system-x86_64 not installed";
  }

  // The test guest with a shell on its console.
  VmSpec ShellGuest() const { return testing::TestGuestSpec(qemu_, "kvmrun.shell"); }
  VmOptions Options() const {
    VmOptions options;
    options.runtime_base = dir_.path();
    options.cache_dir = dir_.path() + "/cache";
    return options;
  }

  std::unique_ptr<Vm> BootToShell(const VmSpec& spec) {
    auto vm = Vm::Start(spec, Options());
    vm->Continue();
    EXPECT_EQ(vm->WaitForConsole(ConsolePattern("^guest# "), 180s).outcome, Outcome::kMatched)
        << vm->console().Tail();
    return vm;
  }

  // Runs `command` in the guest's shell; its output's first line, after "R:".
  std::string Ask(Vm& vm, const std::string& command) {
    const ConsoleMatch m =
        vm.SendConsole("echo \"R:$(" + command + ")\"\n", ConsolePattern("^R:(.*)$"), 60s);
    EXPECT_EQ(m.outcome, Outcome::kMatched) << command << "\n" << vm.console().Tail();
    EXPECT_EQ(vm.WaitForConsole(ConsolePattern("^guest# "), 60s).outcome, Outcome::kMatched);
    return m.outcome == Outcome::kMatched ? m.groups.at(0) : "(no answer)";
  }

  std::string File(const std::string& name, const std::string& content, std::size_t size) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream out(path, std::ios::binary);
    out << content << std::string(size - content.size(), '\0');
    return path;
  }

  std::string qemu_;
  testing::TempDir dir_;
};

TEST_F(HardwareTest, UefiStartsTheKernelAndTheGuestSeesEfiAndATpmKeptInTheStateDir) {
  VmSpec spec = ShellGuest();
  spec.firmware = Firmware::kUefi;
  spec.tpm = true;
  spec.state_dir = dir_.path() + "/state";
  auto vm = BootToShell(spec);
  EXPECT_EQ(Ask(*vm, "[ -d /sys/firmware/efi ] && echo efi || echo bios"), "efi");
  EXPECT_EQ(Ask(*vm, "ls /dev/tpm0"), "/dev/tpm0");
  ASSERT_NE(vm->swtpm(), nullptr);
  const pid_t swtpm = vm->swtpm()->pid();
  vm->WriteConsole("exit\n");
  ASSERT_TRUE(vm->WaitForExit(60s)) << vm->console().Tail();
  // swtpm ends with the QEMU it served, before the Vm is gone.
  EXPECT_TRUE(Ended(swtpm, 10s));
  vm.reset();
  EXPECT_TRUE(std::filesystem::is_regular_file(spec.state_dir + "/uefi-vars.fd"));
  EXPECT_TRUE(std::filesystem::is_regular_file(spec.state_dir + "/tpm/tpm2-00.permall"));
  EXPECT_EQ(std::filesystem::status(spec.state_dir).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_all);
}

TEST_F(HardwareTest, SwtpmDiesWithAQemuThatIsKilledOrNeverStarts) {
  VmSpec spec = ShellGuest();
  spec.tpm = true;
  auto vm = Vm::Start(spec, Options());
  ASSERT_NE(vm->swtpm(), nullptr);
  const pid_t swtpm = vm->swtpm()->pid();
  EXPECT_FALSE(Ended(swtpm, 0ms));
  vm->SignalQemu(SIGKILL);
  EXPECT_TRUE(Ended(swtpm, 10s)) << "swtpm outlived a killed QEMU";
  vm.reset();

  // QEMU refuses its arguments: the swtpm started for it goes too.
  spec.extra_args = {"-device", "no-such-device"};
  EXPECT_THROW(Vm::Start(spec, Options()), VmError);
  EXPECT_EQ(ChildrenNamed(getpid(), "swtpm"), std::vector<pid_t>{});
}

TEST_F(HardwareTest, SwtpmDiesWithAKvmrunKilledWithSigkill) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  auto args = testing::RunTestGuestArgs("linux", "kvmrun.hold");
  args.insert(args.end(), {"--tpm", "--no-agent"});
  const int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  testing::KvmrunProcess kvmrun(
      args, null, out[1], false,
      {"XDG_RUNTIME_DIR=" + dir_.path(), "XDG_CACHE_HOME=" + dir_.path() + "/cache"});
  close(out[1]);
  close(null);
  std::string seen;
  ASSERT_TRUE(testing::ReadUntil(out[0], seen, "KVMRUN-GUEST-HOLDING", 0, 120s, &kvmrun)) << seen;
  const std::vector<pid_t> swtpm = ChildrenNamed(kvmrun.pid(), "swtpm");
  ASSERT_EQ(swtpm.size(), 1u) << seen;
  kill(kvmrun.pid(), SIGKILL);
  ASSERT_TRUE(kvmrun.Wait(10s));
  EXPECT_TRUE(Ended(swtpm[0], 10s)) << "swtpm outlived kvmrun";
  close(out[0]);
}

TEST_F(HardwareTest, DisksOnVirtioAndSataACdromAndAPortForwardReachTheGuest) {
  // A free host port (the kernel's pick, released for QEMU to take).
  const int probe = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  close(probe);

  VmSpec spec = ShellGuest();
  spec.disks = {ParseDiskArgument(File("a.img", "DISK-A", 1 << 20), false, false),
                ParseDiskArgument(File("b.img", "DISK-B", 1 << 20) + ",bus=sata", false, false)};
  spec.cdroms = {File("c.iso", "CDROM-C", 2048 * 16)};
  spec.forwards = {ParseForwardArgument("tcp:" + std::to_string(port) + ":7777")};
  auto vm = BootToShell(spec);
  EXPECT_EQ(Ask(*vm, "head -c 6 /dev/vda"), "DISK-A");
  EXPECT_EQ(Ask(*vm, "head -c 6 /dev/sda"), "DISK-B");
  EXPECT_EQ(Ask(*vm, "head -c 7 /dev/sr0"), "CDROM-C");

  // A listener in the guest, reached from the host through the forward.
  vm->WriteConsole("echo hello-from-guest | nc -l -p 7777 &\n");
  ASSERT_EQ(vm->WaitForConsole(ConsolePattern("^guest# "), 60s).outcome, Outcome::kMatched);
  std::string got;
  for (int attempt = 0; attempt < 100 && got.find("hello-from-guest") == std::string::npos;
       ++attempt) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      char buf[256];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) got.append(buf, static_cast<std::size_t>(n));
    }
    close(fd);
    if (got.find("hello-from-guest") == std::string::npos) std::this_thread::sleep_for(200ms);
  }
  EXPECT_NE(got.find("hello-from-guest"), std::string::npos) << vm->console().Tail();
  vm->Shutdown(0ms);
}

// Reads the RFB protocol version and, answering with the same, the security types: VNC
// authentication only (2) on TCP, none (1) on the Unix socket.
void ExpectRfbHandshake(int fd, char security_type) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char version[12];
  ASSERT_EQ(recv(fd, version, sizeof(version), MSG_WAITALL), 12);
  EXPECT_EQ(std::string(version, 4), "RFB ");
  ASSERT_EQ(write(fd, version, sizeof(version)), 12);
  unsigned char count = 0;
  ASSERT_EQ(recv(fd, &count, 1, MSG_WAITALL), 1);
  ASSERT_GT(count, 0) << "the server refused the connection";
  std::string types(count, '\0');
  ASSERT_EQ(recv(fd, types.data(), count, MSG_WAITALL), count);
  EXPECT_EQ(types, std::string(1, security_type));
}

TEST_F(HardwareTest, AVncClientShakesHandsOnLoopbackWithAPasswordOrOnTheUnixSocket) {
  VmSpec spec = ShellGuest();
  spec.display = ParseDisplayArgument("vnc");
  auto vm = Vm::Start(spec, Options());
  const std::string display = vm->display();
  ASSERT_EQ(display.rfind("vnc 127.0.0.1:", 0), 0u) << display;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(display.substr(14))));
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << display;
  ExpectRfbHandshake(fd, '\x02');
  EXPECT_EQ(vm->display_password().size(), 8u);
  close(fd);
  vm.reset();

  spec.display = ParseDisplayArgument("vnc=unix");
  vm = Vm::Start(spec, Options());
  ASSERT_EQ(vm->display(), "vnc unix:" + vm->runtime_dir() + "/vnc.sock");
  sockaddr_un unix_addr{};
  unix_addr.sun_family = AF_UNIX;
  const std::string path = vm->runtime_dir() + "/vnc.sock";
  std::memcpy(unix_addr.sun_path, path.c_str(), path.size() + 1);
  fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&unix_addr), sizeof(unix_addr)), 0);
  ExpectRfbHandshake(fd, '\x01');
  EXPECT_EQ(vm->display_password(), "");
  close(fd);
}

// The command line the README gives for installing Windows 11: QEMU takes it, the firmware is
// OVMF with Secure Boot enforced (it refuses to start its own unsigned shell), the TPM is there.
TEST_F(HardwareTest, TheWindows11InstallLineRunsOvmfWithSecureBootAndATpm) {
  VmSpec spec;
  spec.qemu = qemu_;
  spec.accel = AccelRequest::kTcg;
  spec.os = GuestOs::kWindows11;
  spec.memory_mib = 512;  // (Windows would need 4 GiB; the firmware does not)
  spec.disks = {ParseDiskArgument(File("win11.img", "", 1 << 20), false, false)};
  spec.cdroms = {File("Win11.iso", "", 2048 * 16), File("virtio-win.iso", "", 2048 * 16)};
  spec.display = ParseDisplayArgument("vnc");
  auto vm = Vm::Start(spec, Options());
  EXPECT_EQ(vm->hardware().firmware, Firmware::kUefiSecure);
  EXPECT_TRUE(vm->hardware().tpm);
  EXPECT_NE(vm->swtpm(), nullptr);
  const std::vector<std::string>& argv = vm->argv();
  EXPECT_NE(std::find(argv.begin(), argv.end(), "smm=on"), argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "tpm-tis,tpmdev=kvmrun-tpm0"), argv.end());
  vm->Continue();
  const ConsoleMatch m = vm->WaitForConsole(ConsolePattern("Security Violation"), 180s);
  EXPECT_EQ(m.outcome, Outcome::kMatched) << vm->console().Tail();
}

}  // namespace
}  // namespace kvmrun

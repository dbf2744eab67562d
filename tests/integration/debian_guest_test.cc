// The guest features on a real distribution: a Debian 12 guest with systemd, udev and Debian's
// qemu-guest-agent (scripts/make-debian-guest), under TCG. The "done when" on it:
// run --name --detach, exec, a share both ways, stop; and a login on its serial console.
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/wait.h>
#include <termios.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/kvmrun_process.h"
#include "tests/support/qemu_binary.h"
#include "tests/support/qemu_process.h"
#include "tests/support/run_command.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string DebianGuestDir() {
  const char* env = std::getenv("KVMRUN_DEBIAN_GUEST_DIR");
  return env != nullptr && *env != '\0' ? env : KVMRUN_BUILD_DIR "/debian-guest";
}

// The Debian guest's files, a private runtime directory, and `kvmrun` run with them.
class DebianGuestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    qemu_ = testing::TestQemuBinary();
    if (qemu_.empty()) GTEST_SKIP() << "qemu-system-x86_64 not installed";
    ASSERT_TRUE(fs::exists(guest_ + "/root.img")) << "run scripts/make-debian-guest";
    options_.extra_env = {"XDG_RUNTIME_DIR=" + dir_.path(),
                          "XDG_CACHE_HOME=" + dir_.path() + "/cache", "KVMRUN_QEMU=" + qemu_};
    options_.timeout = 300s;
  }
  testing::CommandResult Kvmrun(const std::vector<std::string>& args) const {
    return testing::RunKvmrun(args, options_);
  }

  std::string qemu_;
  const std::string guest_ = DebianGuestDir();
  testing::TempDir dir_;
  testing::CommandOptions options_;
};

TEST_F(DebianGuestTest, DetachExecShareAndStopOnDebian12WithSystemd) {
  const std::string& guest = guest_;
  const testing::TempDir& dir = dir_;
  const std::string share = dir.path() + "/code, under test";
  fs::create_directories(share);
  std::ofstream(share + "/from-host.txt") << "from the host\n";
  const auto kvmrun = [this](const std::vector<std::string>& args) { return Kvmrun(args); };

  const auto started = kvmrun({"run",
                               "--name",
                               "deb",
                               "--detach",
                               "--os",
                               "linux",
                               "--accel",
                               "tcg",
                               "--memory",
                               "1G",
                               "--kernel",
                               guest + "/vmlinuz",
                               "--initrd",
                               guest + "/initrd.img",
                               "--append",
                               "root=/dev/vda console=ttyS0",
                               "--disk",
                               guest + "/root.img",
                               "--snapshot",
                               "--share",
                               dir.path() + "/code,, under test,tag=src",
                               "--grace",
                               "30"});
  ASSERT_EQ(started.exit_code, 0) << started.err;

  // The agent starts when systemd's udev sees its port: the first exec waits for the boot.
  const auto os = kvmrun({"exec", "deb", "--agent-wait", "240", "--", "sh", "-c",
                          ". /etc/os-release && echo $ID $VERSION_ID"});
  EXPECT_EQ(os.exit_code, 0) << os.err;
  EXPECT_EQ(os.out, "debian 12\n");
  EXPECT_EQ(kvmrun({"exec", "deb", "--", "sh", "-c", "exit 7"}).exit_code, 7);
  const auto mounted = kvmrun({"exec", "deb", "--", "sh", "-c",
                               "mount -t 9p -o trans=virtio,version=9p2000.L src /mnt && "
                               "cat /mnt/from-host.txt && echo from debian > /mnt/back.txt"});
  EXPECT_EQ(mounted.exit_code, 0) << mounted.err;
  EXPECT_EQ(mounted.out, "from the host\n");
  std::ifstream back(share + "/back.txt");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(back), {}), "from debian\n");
  const auto timed_out = kvmrun({"exec", "deb", "--timeout", "2", "--", "sleep", "600"});
  EXPECT_EQ(timed_out.exit_code, 1);
  EXPECT_NE(timed_out.err.find("ran longer than 2000 ms in the guest and was killed"),
            std::string::npos)
      << timed_out.err;

  // The guest's own clock: its offset and clocksource in verify; a pause leaves it behind and
  // sync sets it right (Debian's qemu-ga with util-linux-extra's /sbin/hwclock).
  const auto verified = kvmrun({"verify", "deb", "--json"});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  const nlohmann::json report = nlohmann::json::parse(verified.out);
  nlohmann::json rows = nlohmann::json::object();
  for (const auto& c : report["checks"]) rows[c["timer"].get<std::string>()] = c;
  EXPECT_EQ(rows["guest-time"]["result"], "ok") << verified.out;
  EXPECT_EQ(rows["guest-clocksource"]["result"], "ok") << verified.out;
  EXPECT_NE(rows["guest-clocksource"]["observed"], "no agent") << verified.out;
  ASSERT_EQ(kvmrun({"qmp", "--qmp-socket", "deb", "stop"}).exit_code, 0);
  std::this_thread::sleep_for(3s);
  ASSERT_EQ(kvmrun({"qmp", "--qmp-socket", "deb", "cont"}).exit_code, 0);
  const auto synced = kvmrun({"sync", "deb", "--json"});
  ASSERT_EQ(synced.exit_code, 0) << synced.out << synced.err;
  const nlohmann::json resync = nlohmann::json::parse(synced.out);
  EXPECT_LT(resync["before"]["offset_s"].get<double>(), -2.0) << synced.out;
  EXPECT_LT(std::abs(resync["after"]["offset_s"].get<double>()), 0.1) << synced.out;
  EXPECT_EQ(resync["rtc_note"], "") << synced.out;

  // systemd (logind) powers the Debian guest off on the power button; were it not listening,
  // the ladder's next step, guest-shutdown through qemu-ga, would. Either way: clean, exit 4.
  const auto stopped = kvmrun({"stop", "deb", "--json"});
  EXPECT_EQ(stopped.exit_code, 4) << stopped.err;
  const nlohmann::json ended = nlohmann::json::parse(stopped.out);
  EXPECT_FALSE(ended["forced"].get<bool>()) << stopped.out;
  EXPECT_TRUE(ended["step"] == "powerdown" || ended["step"] == "the guest agent's powerdown")
      << stopped.out;
  EXPECT_EQ(ended["shutdown_reason"], "guest-shutdown") << stopped.out;
  EXPECT_TRUE(testing::QemusOfVm("deb").empty());
}

// Boot once, restore: the booted Debian guest saved (its writes kept in a qcow2 overlay of the
// image, which the save VM owns) and restored with its own temporary overlay; the restored
// guest's clock, as old as the snapshot, is set through Debian's qemu-ga.
TEST_F(DebianGuestTest, SnapshotOfABootedDebianRestoresWithItsClockSet) {
  const std::string& guest = guest_;
  const testing::TempDir& dir = dir_;
  const std::string disk = dir.path() + "/root.qcow2";
  ASSERT_EQ(
      std::system(("qemu-img create -q -f qcow2 -b '" + guest + "/root.img' -F raw '" + disk + "'")
                      .c_str()),
      0);
  const auto kvmrun = [this](const std::vector<std::string>& args) { return Kvmrun(args); };
  const auto vm = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> args = {"run",      "--name",
                                     name,       "--detach",
                                     "--os",     "linux",
                                     "--accel",  "tcg",
                                     "--memory", "1G",
                                     "--kernel", guest + "/vmlinuz",
                                     "--initrd", guest + "/initrd.img",
                                     "--append", "root=/dev/vda console=ttyS0",
                                     "--disk",   disk,
                                     "--grace",  "30"};
    args.insert(args.end(), extra.begin(), extra.end());
    return kvmrun(args);
  };
  ASSERT_EQ(vm("deb-base", {}).exit_code, 0);
  const auto booted = kvmrun({"exec", "deb-base", "--agent-wait", "240", "--", "true"});
  ASSERT_EQ(booted.exit_code, 0) << booted.err;
  const std::string file = dir.path() + "/debian.kvmrun";
  const auto saved = kvmrun({"snapshot", "save", "deb-base", file});
  ASSERT_EQ(saved.exit_code, 0) << saved.err;
  std::this_thread::sleep_for(3s);

  const auto restored = vm("deb-restored", {"--restore", file});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  const auto os = kvmrun({"exec", "deb-restored", "--agent-wait", "60", "--", "sh", "-c",
                          ". /etc/os-release && echo $ID $VERSION_ID && touch /written"});
  EXPECT_EQ(os.exit_code, 0) << os.err;
  EXPECT_EQ(os.out, "debian 12\n");
  const auto verified = kvmrun({"verify", "deb-restored", "--json"});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  std::ifstream log(dir.path() + "/kvmrun/deb-restored/kvmrun.log");
  const std::string text(std::istreambuf_iterator<char>(log), {});
  EXPECT_NE(text.find("guest clock: offset -"), std::string::npos) << text;
  EXPECT_EQ(kvmrun({"stop", "deb-restored"}).exit_code, 4);
  // The restored guest wrote to its own overlay, not the saved one: a second restore is
  // accepted (the saved disk is unchanged) and does not see the file.
  ASSERT_EQ(vm("deb-again", {"--restore", file}).exit_code, 0);
  const auto again = kvmrun({"exec", "deb-again", "--agent-wait", "60", "--", "sh", "-c",
                             "test -e /written && echo seen || echo unseen"});
  EXPECT_EQ(again.out, "unseen\n") << again.err;
  EXPECT_EQ(kvmrun({"stop", "deb-again"}).exit_code, 4);
}

// A person's session: `kvmrun run` in a terminal, Debian's serial getty on ttyS0, log in as
// root (no password in this image), run a command, read its answer, leave with Ctrl-].
TEST_F(DebianGuestTest, LoginOnTheSerialConsoleFromATerminalAndLeaveWithTheEscapeKey) {
  int master = -1, slave = -1;
  ASSERT_EQ(openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  termios before;
  ASSERT_EQ(tcgetattr(slave, &before), 0);
  std::string seen;
  {
    testing::KvmrunProcess kvmrun(
        {"run", "--os", "linux", "--accel", "tcg", "--memory", "1G", "--kernel",
         guest_ + "/vmlinuz", "--initrd", guest_ + "/initrd.img", "--append",
         "root=/dev/vda console=ttyS0", "--disk", guest_ + "/root.img", "--snapshot", "--grace",
         "30"},
        slave, slave, true, options_.extra_env);
    ASSERT_TRUE(testing::ReadUntil(master, seen, "login: ", 0, 280s, &kvmrun)) << seen;
    testing::Type(master, "root\r");
    ASSERT_TRUE(testing::ReadUntil(master, seen, ":~# ", 0, 60s, &kvmrun)) << seen;
    const std::size_t from = seen.size();
    testing::Type(master, "echo $((6 * 7)) $(id -un)\r");
    EXPECT_TRUE(testing::ReadUntil(master, seen, "42 root\r", from, 60s, &kvmrun)) << seen;
    testing::Type(master, "\x1d");
    const auto status = kvmrun.Wait(90s);
    ASSERT_TRUE(status) << seen;
    // systemd powers off on the ACPI button: the ladder's first step ends it.
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 4) << *status;
    testing::ReadUntil(master, seen, "VM stopped", from, 5s);
    EXPECT_NE(seen.find("VM stopped: the escape key (Ctrl-]): the guest powered off when asked "
                        "(stopped by powerdown)"),
              std::string::npos)
        << seen.substr(from);
  }
  termios after;
  ASSERT_EQ(tcgetattr(slave, &after), 0);
  EXPECT_EQ(after.c_lflag, before.c_lflag);
  EXPECT_EQ(after.c_iflag, before.c_iflag);
  close(master);
  close(slave);
}

// The desktop hardware on a real distribution: OVMF starts Debian's kernel, systemd's Debian
// finds its root on a sata disk (Debian's initramfs has the AHCI driver), the TPM 2.0 from
// swtpm, and a state directory that keeps the VM's UEFI variables and TPM.
TEST_F(DebianGuestTest, UefiTpmAndASataRootOnDebian12) {
  const std::string state = dir_.path() + "/state";
  const auto started = Kvmrun({"run",
                               "--name",
                               "debhw",
                               "--detach",
                               "--os",
                               "linux",
                               "--accel",
                               "tcg",
                               "--memory",
                               "1G",
                               "--firmware",
                               "uefi",
                               "--tpm",
                               "--state-dir",
                               state,
                               "--kernel",
                               guest_ + "/vmlinuz",
                               "--initrd",
                               guest_ + "/initrd.img",
                               "--append",
                               "root=/dev/sda console=ttyS0",
                               "--disk",
                               guest_ + "/root.img,bus=sata",
                               "--snapshot",
                               "--grace",
                               "30"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  const auto seen = Kvmrun({"exec", "debhw", "--agent-wait", "240", "--", "sh", "-c",
                            "test -d /sys/firmware/efi && echo efi; "
                            "cat /sys/class/tpm/tpm0/tpm_version_major; findmnt -no SOURCE /"});
  EXPECT_EQ(seen.exit_code, 0) << seen.err;
  EXPECT_EQ(seen.out, "efi\n2\n/dev/sda\n");
  const auto stopped = Kvmrun({"stop", "debhw"});
  EXPECT_EQ(stopped.exit_code, 4) << stopped.err;
  EXPECT_TRUE(testing::QemusOfVm("debhw").empty());
  EXPECT_TRUE(fs::is_regular_file(state + "/uefi-vars.fd"));
  EXPECT_TRUE(fs::is_regular_file(state + "/tpm/tpm2-00.permall"));
}

}  // namespace
}  // namespace kvmrun

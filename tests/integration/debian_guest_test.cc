// The guest features on a real distribution: a Debian 12 guest with systemd, udev and Debian's
// qemu-guest-agent (scripts/make-debian-guest), under TCG. The "done when" on it:
// run --name --detach, exec, a share both ways, stop.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

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

TEST(DebianGuestTest, DetachExecShareAndStopOnDebian12WithSystemd) {
  KVMRUN_REQUIRE_QEMU(qemu);
  const std::string guest = DebianGuestDir();
  ASSERT_TRUE(fs::exists(guest + "/root.img")) << "run scripts/make-debian-guest";
  testing::TempDir dir;
  const std::string share = dir.path() + "/code, under test";
  fs::create_directories(share);
  std::ofstream(share + "/from-host.txt") << "from the host\n";
  testing::CommandOptions options;
  options.extra_env = {"XDG_RUNTIME_DIR=" + dir.path(), "XDG_CACHE_HOME=" + dir.path() + "/cache",
                       "KVMRUN_QEMU=" + qemu};
  options.timeout = 300s;
  const auto kvmrun = [&](std::vector<std::string> args) {
    return testing::RunKvmrun(args, options);
  };

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
  const auto os = kvmrun({"exec", "deb", "--agent-timeout", "240", "--", "sh", "-c",
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
  ASSERT_EQ(kvmrun({"qmp", "--socket", "deb", "stop"}).exit_code, 0);
  std::this_thread::sleep_for(3s);
  ASSERT_EQ(kvmrun({"qmp", "--socket", "deb", "cont"}).exit_code, 0);
  const auto synced = kvmrun({"sync", "deb", "--json"});
  ASSERT_EQ(synced.exit_code, 0) << synced.out << synced.err;
  const nlohmann::json resync = nlohmann::json::parse(synced.out);
  EXPECT_LT(resync["before"]["offset_s"].get<double>(), -2.0) << synced.out;
  EXPECT_LT(std::abs(resync["after"]["offset_s"].get<double>()), 0.1) << synced.out;
  EXPECT_EQ(resync["rtc_note"], "") << synced.out;

  // systemd powers off on ACPI: the ladder stops at its first step.
  const auto stopped = kvmrun({"stop", "deb"});
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_TRUE(testing::QemusOfVm("deb").empty());
}

}  // namespace
}  // namespace kvmrun

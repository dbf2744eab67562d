// `kvmrun timecheck` in a real guest under TCG: behaviour with generous bounds, not a benchmark.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/qemu_binary.h"
#include "tests/support/qemu_process.h"
#include "tests/support/run_command.h"
#include "tests/support/test_guest.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;

nlohmann::json Timecheck(const std::vector<std::string>& extra, const std::string& qemu,
                         const testing::TempDir& dir) {
  std::vector<std::string> args = {
      "timecheck",           "--accel", "tcg", "--kernel", testing::TestKernel(), "--initrd",
      testing::TestInitrd(), "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  testing::CommandOptions options;
  options.timeout = 300s;
  options.extra_env = {"XDG_RUNTIME_DIR=" + dir.path(), "KVMRUN_QEMU=" + qemu};
  const auto r = testing::RunKvmrun(args, options);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::cout << r.err;  // the progress lines, for the test log
  return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
}

TEST(TimecheckQemuTest, SlewKeepsTheTicksThatDiscardLosesAcrossSigstopStalls) {
  KVMRUN_REQUIRE_QEMU(qemu);
  testing::TempDir dir;
  const auto j = Timecheck({"--os", "linux-legacy", "--stall", "sigstop", "--stalls", "3",
                            "--stall-seconds", "2", "--duration", "16", "--compare", "default"},
                           qemu, dir);
  ASSERT_EQ(j["runs"].size(), 2u) << j.dump(2);
  const auto& slew = j["runs"][0];
  const auto& discard = j["runs"][1];
  EXPECT_EQ(slew["rtc_policy"], "slew");
  EXPECT_EQ(discard["rtc_policy"], "discard");
  const double slew_ratio = slew["ratio_host"].get<double>();
  const double discard_ratio = discard["ratio_host"].get<double>();
  std::cout << "timecheck: slew kept " << slew_ratio << " of the expected ticks, discard kept "
            << discard_ratio << " (3 x 2 s SIGSTOP, 16 s, TCG)" << std::endl;
  EXPECT_GE(slew_ratio, 0.995);
  EXPECT_LE(discard_ratio, 0.95);
  EXPECT_EQ(slew["catch_up_s"].size(), 3u);
  for (const auto& c : slew["catch_up_s"]) EXPECT_FALSE(c.is_null()) << slew.dump(2);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

// kvmrun's pause semantics: by default a resumed slew guest is given the ticks of the pause
// (its tick count follows host time); with the owed ticks dropped it follows its own clock,
// which stood still while paused.
TEST(TimecheckQemuTest, QmpPauseCatchesUpByDefaultAndNotWhenOwedTicksAreDropped) {
  KVMRUN_REQUIRE_QEMU(qemu);
  testing::TempDir dir;
  const std::vector<std::string> common = {
      "--os", "linux-legacy",    "--stall", "qmp",        "--stalls",
      "2",    "--stall-seconds", "2",       "--duration", "10"};
  auto args = common;
  const auto catch_up = Timecheck(args, qemu, dir);
  args.push_back("--drop-owed-ticks");
  const auto dropped = Timecheck(args, qemu, dir);
  ASSERT_EQ(catch_up["runs"].size(), 1u);
  ASSERT_EQ(dropped["runs"].size(), 1u);
  const auto& c = catch_up["runs"][0];
  const auto& d = dropped["runs"][0];
  std::cout << "pause: catch-up " << c["ratio_host"] << " of host time / " << c["ratio_guest"]
            << " of guest time; dropped " << d["ratio_host"] << " / " << d["ratio_guest"]
            << std::endl;
  EXPECT_GE(c["ratio_host"].get<double>(), 0.99);
  EXPECT_GE(c["ratio_guest"].get<double>(), 1.1) << "the pause was given back";
  EXPECT_LE(d["ratio_host"].get<double>(), 0.9);
  EXPECT_NEAR(d["ratio_guest"].get<double>(), 1.0, 0.05);
}

// An installed kvmrun needs nothing from the build tree: installed into a scratch prefix and run
// with the source and build trees hidden (a mount namespace puts an empty tmpfs over them), it
// builds its probe guest into an empty cache with the builder installed next to it, and
// measures.
TEST(TimecheckQemuTest, AnInstalledKvmrunBuildsItsProbeGuestWithoutTheBuildTree) {
  KVMRUN_REQUIRE_QEMU(qemu);
  testing::TempDir dir;
  const std::string prefix = dir.path() + "/prefix";
  const auto installed =
      testing::RunCommand({"cmake", "--install", KVMRUN_BUILD_DIR, "--prefix", prefix});
  ASSERT_EQ(installed.exit_code, 0) << installed.err;
  // As root, a mount namespace; otherwise inside a user namespace too.
  const std::vector<std::string> unshare = getuid() == 0
                                               ? std::vector<std::string>{"unshare", "-m"}
                                               : std::vector<std::string>{"unshare", "-r", "-m"};
  std::vector<std::string> argv = unshare;
  const std::string hide =
      "case \"$2\" in \"$1\"/*) ;; *) mount -t tmpfs none \"$2\" || exit 9 ;; esac; "
      "mount -t tmpfs none \"$1\" && shift 2 && cd / && exec \"$@\"";
  argv.insert(argv.end(), {"sh", "-c", hide, "sh", KVMRUN_SOURCE_DIR, KVMRUN_BUILD_DIR,
                           prefix + "/bin/kvmrun", "timecheck", "--os", "linux", "--accel", "tcg",
                           "--stall", "none", "--stalls", "0", "--duration", "5", "--json"});
  testing::CommandOptions options;
  options.timeout = 600s;
  options.extra_env = {"XDG_RUNTIME_DIR=" + dir.path(), "XDG_CACHE_HOME=" + dir.path() + "/cache",
                       "KVMRUN_QEMU=" + qemu, "KVMRUN_GUEST_DIR="};
  const auto r = testing::RunCommand(argv, options);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("building the probe guest in " + dir.path() + "/cache/kvmrun/probe-guest"),
            std::string::npos)
      << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["runs"].size(), 1u);
  EXPECT_GT(j["runs"][0]["ticks_counted"].get<long long>(), 0) << j.dump(2);
}

}  // namespace
}  // namespace kvmrun

// The example VM file boots the test guest for real: `kvmrun run examples/vm/linux-ci.toml`.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/qemu_binary.h"
#include "tests/support/qemu_process.h"
#include "tests/support/run_command.h"
#include "tests/support/test_guest.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;

TEST(VmFileQemuTest, TheCiExampleBootsTheTestGuest) {
  const std::string qemu = testing::TestQemuBinary();
  if (qemu.empty()) GTEST_SKIP() << "qemu-system-x86_64 not installed";
  ASSERT_TRUE(std::filesystem::exists(testing::TestKernel())) << "run scripts/make-test-guest";
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path() + "/run");
  const std::string console = dir.path() + "/console.log";
  std::vector<std::string> args = {"run",           KVMRUN_SOURCE_DIR "/examples/vm/linux-ci.toml",
                                   "--accel",       "tcg",
                                   "--console-log", console};
  // The example names the guest under build/; a build directory elsewhere has its own.
  if (std::filesystem::path(KVMRUN_BUILD_DIR) !=
      std::filesystem::path(KVMRUN_SOURCE_DIR "/build")) {
    args.insert(args.end(), {"--kernel", testing::TestKernel(), "--initrd", testing::TestInitrd()});
  }
  testing::CommandOptions options;
  options.timeout = 180s;
  options.extra_env = {"XDG_RUNTIME_DIR=" + dir.path() + "/run", "KVMRUN_QEMU=" + qemu};
  const auto r = testing::RunKvmrun(args, options);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(console);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("KVMRUN-GUEST-READY"), std::string::npos) << text.str();
  EXPECT_NE(r.err.find("clock verification: ok"), std::string::npos)
      << "verified before the guest ran: " << r.err;
}

}  // namespace
}  // namespace kvmrun

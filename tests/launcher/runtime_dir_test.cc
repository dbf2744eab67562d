#include "launcher/runtime_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "kvmrun/error.h"
#include "tests/support/qemu_process.h"

namespace kvmrun {
namespace {

namespace fs = std::filesystem;

TEST(RuntimeDirTest, PrivateUnpredictableAndRemovedWithItsContents) {
  testing::TempDir base;
  std::string path;
  {
    RuntimeDir dir = RuntimeDir::Create(base.path());
    path = dir.path();
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    const std::string prefix = base.path() + "/kvmrun-" + std::to_string(getpid()) + "-";
    EXPECT_EQ(path.rfind(prefix, 0), 0u) << path;
    EXPECT_EQ(path.size(), prefix.size() + 6);
    std::ofstream(path + "/file") << "x";
    RuntimeDir moved = std::move(dir);
    EXPECT_EQ(moved.path(), path);
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(RuntimeDirTest, UncreatableBaseIsAUsageErrorNamingIt) {
  try {
    RuntimeDir::Create("/nonexistent/base");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(
        std::string(e.what()).find("cannot create a runtime directory in '/nonexistent/base'"),
        std::string::npos);
  }
}

TEST(RuntimeDirTest, StaleCleanupRemovesOnlyDeadOwnersDirectories) {
  testing::TempDir base;
  // A pid that is certainly dead: a child we reaped.
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  const std::string stale = base.path() + "/kvmrun-" + std::to_string(dead) + "-abcdef";
  const std::string live = base.path() + "/kvmrun-" + std::to_string(getpid()) + "-ghijkl";
  const std::string other = base.path() + "/kvmrun-notapid-xyz123";
  const std::string unrelated = base.path() + "/something-else";
  for (const auto& d : {stale, live, other, unrelated}) fs::create_directories(d + "/sub");
  EXPECT_EQ(RemoveStaleRuntimeDirs(base.path()), 1);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(other));
  EXPECT_TRUE(fs::exists(unrelated));
}

}  // namespace
}  // namespace kvmrun

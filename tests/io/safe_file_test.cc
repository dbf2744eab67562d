// Files and directories named from outside: regular files only (a FIFO is refused, not waited
// on), bounded, beneath their directory without links; directories kvmrun writes into are this
// user's and nobody else's; files are created afresh and renamed into place, never written
// through a planted link.
#include "io/safe_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "tests/support/qemu_process.h"

namespace kvmrun {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class SafeFileTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
  std::string File(const std::string& name, const std::string& text) const {
    std::ofstream(Path(name)) << text;
    return Path(name);
  }
  testing::TempDir dir_;
};

TEST_F(SafeFileTest, OnlyRegularFilesAreReadAndNothingBlocks) {
  EXPECT_EQ(ReadRegularFile(File("a", "text"), 100), "text");
  ASSERT_EQ(mkfifo(Path("fifo").c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  try {
    ReadRegularFile(Path("fifo"), 100);
    FAIL();
  } catch (const UnsafePath& e) {
    EXPECT_NE(std::string(e.what()).find("is a FIFO, not a regular file"), std::string::npos);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_THROW(ReadRegularFile("/dev/zero", 100), UnsafePath);
  EXPECT_THROW(ReadRegularFile(dir_.path(), 100), UnsafePath);
  EXPECT_THROW(ReadRegularFile(Path("missing"), 100), UsageError);
}

TEST_F(SafeFileTest, SizeIsBoundedAndLinksFollowedOnlyWhenAllowed) {
  const std::string big = File("big", std::string(1000, 'x'));
  EXPECT_THROW(ReadRegularFile(big, 999), UnsafePath);
  EXPECT_EQ(ReadRegularFile(big, 1000).size(), 1000u);
  fs::create_symlink(big, Path("link"));
  EXPECT_EQ(ReadRegularFile(Path("link"), 1000, FinalLink::kFollow).size(), 1000u);
  EXPECT_THROW(ReadRegularFile(Path("link"), 1000, FinalLink::kRefuse), UnsafePath);
}

TEST_F(SafeFileTest, BeneathADirectoryMeansBeneathIt) {
  fs::create_directories(Path("shard/console"));
  File("shard/console/a.log", "log");
  File("secret", "hunter2");
  EXPECT_EQ(ReadRegularFileBeneath(Path("shard"), "console/a.log", 100), "log");
  for (const std::string& bad :
       {std::string("../secret"), Path("secret"), std::string("console/../../secret"),
        std::string("./x"), std::string(""), std::string("console//a.log")}) {
    EXPECT_THROW(ReadRegularFileBeneath(Path("shard"), bad, 100), UnsafePath) << bad;
  }
  fs::create_symlink(Path("secret"), Path("shard/console/b.log"));
  EXPECT_THROW(ReadRegularFileBeneath(Path("shard"), "console/b.log", 100), UnsafePath);
  fs::create_directory_symlink(dir_.path(), Path("shard/up"));
  EXPECT_THROW(ReadRegularFileBeneath(Path("shard"), "up/secret", 100), UnsafePath);
}

TEST_F(SafeFileTest, DirectoriesAreMadePrivateAndOthersAreRefused) {
  EnsureSafeDir(Path("a/b/c"), DirMode::kPrivate);
  struct stat st {};
  ASSERT_EQ(stat(Path("a/b/c").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(Path("a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);  // what was made on the way is private too

  fs::create_directory(Path("open"));
  chmod(Path("open").c_str(), 0755);
  EnsureSafeDir(Path("open"), DirMode::kShared);  // readable by others is fine for results
  ASSERT_EQ(stat(Path("open").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  EnsureSafeDir(Path("open"), DirMode::kPrivate);  // a state directory: tightened
  ASSERT_EQ(stat(Path("open").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  fs::create_directory(Path("writable"));
  chmod(Path("writable").c_str(), 0775);
  EXPECT_THROW(EnsureSafeDir(Path("writable"), DirMode::kShared), UnsafePath);
  // Beneath a directory others can write (and not sticky): its owner-to-be could swap it.
  chmod(Path("writable").c_str(), 0777);
  EXPECT_THROW(EnsureSafeDir(Path("writable/mine"), DirMode::kPrivate), UnsafePath);
  chmod(Path("writable").c_str(), 01777);  // as /tmp is: fine
  EXPECT_NO_THROW(EnsureSafeDir(Path("writable/mine"), DirMode::kPrivate));

  fs::create_directory_symlink(Path("a"), Path("link"));
  EXPECT_THROW(EnsureSafeDir(Path("link"), DirMode::kPrivate), UnsafePath);
}

TEST_F(SafeFileTest, SomeoneElsesDirectoryIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "making a directory another user's needs root";
  fs::create_directory(Path("theirs"));
  ASSERT_EQ(chown(Path("theirs").c_str(), 65534, 65534), 0);
  chmod(Path("theirs").c_str(), 0700);
  try {
    EnsureSafeDir(Path("theirs"), DirMode::kPrivate);
    FAIL();
  } catch (const UnsafePath& e) {
    EXPECT_NE(std::string(e.what()).find("belongs to uid 65534"), std::string::npos) << e.what();
  }
  EXPECT_THROW(EnsureSafeDir(Path("theirs/mine"), DirMode::kPrivate), UnsafePath);
}

TEST_F(SafeFileTest, WritesNeverFollowAPlantedLink) {
  const std::string victim = File("victim", "precious");
  fs::create_directory(Path("state"));
  fs::create_symlink(victim, Path("state/vars.fd.partial"));
  fs::create_symlink(victim, Path("state/vars.fd"));
  WriteFileAtomically(Path("state"), "vars.fd", "firmware", 0600);
  EXPECT_EQ(Slurp(victim), "precious");
  EXPECT_EQ(Slurp(Path("state/vars.fd")), "firmware");
  EXPECT_FALSE(fs::is_symlink(Path("state/vars.fd")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(Path("state/vars.fd.partial"))));
  struct stat st {};
  ASSERT_EQ(stat(Path("state/vars.fd").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  struct stat victim_st {};
  ASSERT_EQ(stat(victim.c_str(), &victim_st), 0);
  EXPECT_EQ(victim_st.st_mode & 0777, 0644u);  // its mode was not changed either

  fs::create_symlink(victim, Path("state/copy.partial"));
  CopyFileAtomically(File("template", "OVMF"), Path("state"), "copy", 0600);
  EXPECT_EQ(Slurp(Path("state/copy")), "OVMF");
  EXPECT_EQ(Slurp(victim), "precious");
  fs::create_symlink(victim, Path("state/excl"));
  EXPECT_THROW(CreateFileExclusive(Path("state/excl"), 0600), Error);
  EXPECT_EQ(Slurp(victim), "precious");
}

}  // namespace
}  // namespace kvmrun

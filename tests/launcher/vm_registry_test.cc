// The named-VM registry without VMs: claiming, refusing a live name, stale directories,
// liveness by lock, names.
#include "kvmrun/vm_registry.h"

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

class VmRegistryTest : public ::testing::Test {
 protected:
  std::string Base() const { return dir_.path() + "/kvmrun"; }
  testing::TempDir dir_;
};

TEST_F(VmRegistryTest, ANameIsHeldUntilItsOwnerGoesAndTheDirectoryWithIt) {
  {
    VmRegistration vm = VmRegistration::Claim(Base(), "web");
    struct stat st {};
    ASSERT_EQ(stat(vm.dir().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    vm.Publish({{"supervisor_pid", getpid()}, {"accel", "tcg"}});
    try {
      VmRegistration::Claim(Base(), "web");
      FAIL() << "a live name was claimed twice";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("a VM called 'web' is already running (pid " +
                                           std::to_string(getpid()) + ")"),
                std::string::npos)
          << e.what();
    }
    const auto listed = ListNamedVms(Base());
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].name, "web");
    EXPECT_EQ(listed[0].supervisor_pid, getpid());
    EXPECT_EQ(listed[0].info.value("accel", ""), "tcg");
    ASSERT_TRUE(FindNamedVm("web", Base()).has_value());
  }
  EXPECT_FALSE(fs::exists(Base() + "/web"));
  EXPECT_FALSE(FindNamedVm("web", Base()).has_value());
  EXPECT_NO_THROW(VmRegistration::Claim(Base(), "web"));
}

// An owner that dies without cleaning up (kill -9) leaves a directory nobody holds: it is not
// listed, it is removed, and the name is free.
TEST_F(VmRegistryTest, ADeadOwnersDirectoryIsStaleAndRemoved) {
  const pid_t child = fork();
  if (child == 0) {
    VmRegistration vm = VmRegistration::Claim(Base(), "ghost");
    vm.Publish({{"supervisor_pid", getpid()}});
    std::ofstream(vm.Path("qmp.sock")) << "left behind";
    _exit(0);  // no destructors: as if killed
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(fs::exists(Base() + "/ghost/qmp.sock"));
  EXPECT_TRUE(ListNamedVms(Base()).empty());
  EXPECT_FALSE(fs::exists(Base() + "/ghost"));
  VmRegistration again = VmRegistration::Claim(Base(), "ghost");
  EXPECT_FALSE(fs::exists(again.Path("qmp.sock"))) << "what the dead owner left is gone";
}

// The parent of a fork lets go of its descriptor; the child keeps the name.
TEST_F(VmRegistryTest, ReleaseLeavesTheNameToTheProcessThatStillHoldsTheLock) {
  VmRegistration vm = VmRegistration::Claim(Base(), "kept");
  const std::string dir = vm.dir();
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  if (child == 0) {  // holds the same open lock file
    close(pipe_fds[1]);
    char c;
    [[maybe_unused]] const ssize_t n = read(pipe_fds[0], &c, 1);
    _exit(0);
  }
  close(pipe_fds[0]);
  vm.Release();
  EXPECT_TRUE(fs::exists(dir));
  EXPECT_TRUE(FindNamedVm("kept", Base()).has_value()) << "the child still holds it";
  close(pipe_fds[1]);  // the child ends
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_FALSE(FindNamedVm("kept", Base()).has_value());
}

TEST_F(VmRegistryTest, NamesAreSafeDirectoryNames) {
  for (const char* ok : {"web", "ci-runner.1", "A_b"}) EXPECT_NO_THROW(ValidateVmName(ok)) << ok;
  for (const std::string& bad : std::vector<std::string>{"", ".hidden", "-x", "a/b", "..", "a b",
                                                         "db=primary,x=y", std::string(65, 'a')}) {
    EXPECT_THROW(ValidateVmName(bad), UsageError) << bad;
  }
  // Someone else's (or a link as the) base in a shared /tmp is refused.
  fs::create_directories(dir_.path() + "/real");
  fs::create_symlink(dir_.path() + "/real", dir_.path() + "/link");
  EXPECT_THROW(VmRegistration::Claim(dir_.path() + "/link", "x"), Error);
}

}  // namespace
}  // namespace kvmrun

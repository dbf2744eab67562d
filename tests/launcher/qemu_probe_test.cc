#include "kvmrun/qemu_probe.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "kvmrun/error.h"
#include "tests/support/qemu_process.h"

namespace kvmrun {
namespace {

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string Script(const testing::TempDir& dir, const std::string& name, const std::string& body) {
  const std::string path = dir.path() + "/" + name;
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  chmod(path.c_str(), 0755);
  return path;
}

void ExpectUsageError(const std::function<void()>& f, const std::string& expected) {
  try {
    f();
    ADD_FAILURE() << "no error; expected: " << expected;
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
}

TEST(FindQemuTest, ExplicitPathMustBeAnExecutableFile) {
  testing::TempDir dir;
  ExpectUsageError([&] { FindQemu(dir.path() + "/nope"); },
                   "qemu: '" + dir.path() + "/nope': No such file");
  const std::string plain = dir.path() + "/plain";
  std::ofstream(plain) << "x";
  ExpectUsageError([&] { FindQemu(plain); }, "is not an executable file");
  ExpectUsageError([&] { FindQemu(dir.path()); }, "is not an executable file");
  const std::string script = Script(dir, "qemu-system-x86_64", "exit 0");
  EXPECT_EQ(FindQemu(script), script);
}

TEST(FindQemuTest, EnvironmentThenPathThenAnInstallHint) {
  testing::TempDir dir;
  const std::string script = Script(dir, "qemu-system-x86_64", "exit 0");
  {
    ScopedEnv env("KVMRUN_QEMU", script);
    EXPECT_EQ(FindQemu(""), script);
  }
  {
    ScopedEnv env("KVMRUN_QEMU", "");
    ScopedEnv path("PATH", dir.path());
    EXPECT_EQ(FindQemu(""), script);
  }
  ScopedEnv env("KVMRUN_QEMU", "");
  ScopedEnv path("PATH", "/nonexistent");
  ExpectUsageError([] { FindQemu(""); }, "sudo apt-get install qemu-system-x86");
}

TEST(ProbeQemuTest, ABinaryThatIsNotQemuIsAUsageError) {
  testing::TempDir dir;
  auto runner = MakeProcessRunner();
  ExpectUsageError([&] { ProbeQemu("/bin/true", *runner); },
                   "'/bin/true' does not look like qemu-system-x86_64: '-help' exit code 0");
  const std::string garbage = Script(dir, "garbage", "echo 'Hello, I am a toaster'; exit 0");
  ExpectUsageError([&] { ProbeQemu(garbage, *runner); }, "printing: Hello, I am a toaster");
  const std::string failing = Script(dir, "failing", "echo 'boom' >&2; exit 7");
  ExpectUsageError([&] { ProbeQemu(failing, *runner); }, "'-help' exit code 7, printing: boom");
}

TEST(ProbeCacheTest, KeyedByPathSizeAndMtimeAndTolerantOfCorruption) {
  testing::TempDir dir;
  const std::string binary = Script(dir, "qemu", "exit 0");
  const ProbeCache cache(dir.path() + "/cache");
  EXPECT_FALSE(cache.Load(binary).has_value());
  cache.Store(binary, {{"capabilities", CapabilitiesToJson(ShippedCapabilitiesFor("7.2"))}});
  auto entry = cache.Load(binary);
  ASSERT_TRUE(entry.has_value());
  EXPECT_TRUE(CapabilitiesFromJson(entry->at("capabilities"))
                  .SameClockFeatures(ShippedCapabilitiesFor("7.2")));

  // A rebuilt binary (different size) is a different binary.
  std::ofstream(binary, std::ios::app) << "# rebuilt\n";
  EXPECT_FALSE(cache.Load(binary).has_value());

  cache.Store(binary, {{"capabilities", CapabilitiesToJson(ShippedCapabilitiesFor("9.2"))}});
  ASSERT_TRUE(cache.Load(binary).has_value());
  std::ofstream(cache.PathFor(binary)) << "{ not json";
  EXPECT_FALSE(cache.Load(binary).has_value());
}

TEST(CapabilitiesJsonTest, RoundTrips) {
  QemuCapabilities caps = ShippedCapabilitiesFor("2.12");
  caps.default_machine = "pc-i440fx-2.12";
  caps.machine_types = {"pc-i440fx-2.12", "pc-q35-2.12"};
  EXPECT_EQ(CapabilitiesFromJson(CapabilitiesToJson(caps)), caps);
  EXPECT_ANY_THROW(CapabilitiesFromJson({{"version", "x"}}));
}

}  // namespace
}  // namespace kvmrun

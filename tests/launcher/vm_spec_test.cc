#include "kvmrun/vm_spec.h"

#include <gtest/gtest.h>

#include <fstream>

#include "kvmrun/error.h"
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
      EXPECT_EQ(message.rfind(std::string("--memory: invalid value '") + bad + "'", 0), 0u)
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
  spec.disks.push_back({File("disk, 1.img"), DiskFormat::kRaw, false, false});
  EXPECT_NO_THROW(ValidateVmSpec(spec));
}

TEST_F(ValidateVmSpecTest, NamesTheFirstProblem) {
  VmSpec spec;
  spec.cpus = 0;
  ExpectUsageError(spec, "--cpus: invalid value '0'; valid: 1 to 1024");
  spec = {};
  spec.memory_mib = 1u << 30;
  ExpectUsageError(spec, "MiB is more than this host's");
  spec = {};
  spec.kernel = dir_.path() + "/missing";
  ExpectUsageError(spec, "kernel '" + dir_.path() + "/missing': No such file or directory");
  spec = {};
  spec.kernel = dir_.path();
  ExpectUsageError(spec, "is a directory");
  spec = {};
  spec.initrd = File("initrd");
  ExpectUsageError(spec, "--initrd and --append need --kernel");
  spec = {};
  spec.disks.push_back({dir_.path() + "/nope.img", DiskFormat::kRaw, false, false});
  ExpectUsageError(spec, "disk '" + dir_.path() + "/nope.img'");
  spec = {};
  spec.cdrom = "/dev/null";
  ExpectUsageError(spec, "cdrom '/dev/null' is not a regular file");
  spec = {};
  spec.qmp_socket = "/tmp/" + std::string(120, 's');
  ExpectUsageError(spec, "--qmp-socket: the path is 125 bytes");
  spec = {};
  spec.name = "";
  ExpectUsageError(spec, "--name");
}

TEST_F(ValidateVmSpecTest, DetectsQcow2ByItsMagic) {
  EXPECT_EQ(DetectDiskFormat(File("raw.img", std::string(512, '\0'))), DiskFormat::kRaw);
  EXPECT_EQ(DetectDiskFormat(File("q.qcow2", std::string("QFI\xfb\0\0\0\3", 8))),
            DiskFormat::kQcow2);
  EXPECT_THROW(DetectDiskFormat(dir_.path() + "/none"), UsageError);
}

TEST(AccelRequestTest, ParsesAndRejects) {
  EXPECT_EQ(ParseAccelRequest("AUTO"), AccelRequest::kAuto);
  EXPECT_EQ(ParseVerifyMode("warn"), VerifyMode::kWarn);
  try {
    ParseVerifyMode("strict");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "--verify: invalid value 'strict'; valid: off, warn, enforce");
  }
}

}  // namespace
}  // namespace kvmrun

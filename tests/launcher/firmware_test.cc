#include "kvmrun/firmware.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kvmrun/error.h"
#include "tests/support/qemu_process.h"

namespace kvmrun {
namespace {

// A descriptor as Debian's ovmf package writes them.
std::string Descriptor(const std::string& code, const std::string& vars,
                       const std::string& machines, const std::string& features) {
  return R"({"description": "OVMF )" + code + R"(", "interface-types": ["uefi"],
    "mapping": {"device": "flash", "executable": {"filename": ")" +
         code + R"(", "format": "raw"},
                "nvram-template": {"filename": ")" +
         vars + R"(", "format": "raw"}},
    "targets": [{"architecture": "x86_64", "machines": [)" +
         machines + R"(]}], "features": [)" + features + "]}";
}

class FirmwareTest : public ::testing::Test {
 protected:
  void Write(const std::string& dir, const std::string& name, const std::string& text) {
    std::filesystem::create_directories(dir_.path() + "/" + dir);
    std::ofstream(dir_.path() + "/" + dir + "/" + name) << text;
  }
  std::vector<std::string> Dirs() const {
    return {dir_.path() + "/usr", dir_.path() + "/etc", dir_.path() + "/home"};
  }
  void WriteDebians() {
    Write("usr", "40-edk2-x86_64-secure-enrolled.json",
          Descriptor("/ovmf/CODE.ms.fd", "/ovmf/VARS.ms.fd", R"("pc-q35-*")",
                     R"("acpi-s3", "enrolled-keys", "requires-smm", "secure-boot")"));
    Write("usr", "50-edk2-x86_64-secure.json",
          Descriptor("/ovmf/CODE.secboot.fd", "/ovmf/VARS.fd", R"("pc-q35-*")",
                     R"("requires-smm", "secure-boot")"));
    Write("usr", "60-edk2-x86_64.json",
          Descriptor("/ovmf/CODE.fd", "/ovmf/VARS.fd", R"("pc-i440fx-*", "pc-q35-*")",
                     R"("acpi-s3")"));
  }
  testing::TempDir dir_;
};

TEST_F(FirmwareTest, PicksPlainUefiForAnyMachineAndSecureBootWithKeysForQ35) {
  WriteDebians();
  const FirmwareImage plain = FindFirmware(Firmware::kUefi, "", Dirs());
  EXPECT_EQ(plain.code, "/ovmf/CODE.fd");
  EXPECT_EQ(plain.vars_template, "/ovmf/VARS.fd");
  EXPECT_FALSE(plain.requires_smm);
  EXPECT_EQ(FindFirmware(Firmware::kUefi, "q35", Dirs()).code, "/ovmf/CODE.fd");
  const FirmwareImage secure = FindFirmware(Firmware::kUefiSecure, "pc-q35-7.2", Dirs());
  EXPECT_EQ(secure.code, "/ovmf/CODE.ms.fd");
  EXPECT_EQ(secure.vars_template, "/ovmf/VARS.ms.fd");
  EXPECT_TRUE(secure.secure_boot && secure.enrolled_keys && secure.requires_smm);
  EXPECT_EQ(secure.descriptor, Dirs()[0] + "/40-edk2-x86_64-secure-enrolled.json");
}

TEST_F(FirmwareTest, NoneThatFitsNamesThePackage) {
  WriteDebians();
  try {
    FindFirmware(Firmware::kUefiSecure, "pc", Dirs());
    FAIL() << "Secure Boot on i440FX found";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("no uefi-secure firmware for machine type 'pc'"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("apt-get install ovmf"), std::string::npos) << e.what();
  }
  EXPECT_THROW(FindFirmware(Firmware::kUefi, "", {dir_.path() + "/none"}), UsageError);
}

TEST_F(FirmwareTest, ALaterDirectoryReplacesAFileOfTheSameNameAndJunkIsSkipped) {
  WriteDebians();
  Write("home", "60-edk2-x86_64.json",
        Descriptor("/mine/CODE.fd", "/mine/VARS.fd", R"("pc-*")", ""));
  Write("etc", "10-broken.json", "{ not json");
  Write("etc", "20-bios.json", R"({"interface-types": ["bios"], "mapping": {"device": "memory"}})");
  Write("etc", "30-arm.json", R"({"interface-types": ["uefi"], "mapping": {"device": "flash",
    "executable": {"filename": "/arm/CODE.fd"}, "nvram-template": {"filename": "/arm/VARS.fd"}},
    "targets": [{"architecture": "aarch64", "machines": ["virt-*"]}]})");
  const std::vector<FirmwareImage> all = ReadFirmwareDescriptors(Dirs());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(FindFirmware(Firmware::kUefi, "", Dirs()).code, "/mine/CODE.fd");
}

}  // namespace
}  // namespace kvmrun

#include "kvmrun/hardware_profile.h"

#include <gtest/gtest.h>

#include "kvmrun/error.h"
#include "kvmrun/guest_os.h"

namespace kvmrun {
namespace {

VmSpec Spec(GuestOs os, bool kernel_boot = false) {
  VmSpec spec;
  spec.os = os;
  if (kernel_boot) spec.kernel = "/boot/vmlinuz";
  return spec;
}

TEST(HardwareProfileTest, Windows11FromItsDiskGetsUefiSecureBootATpmAndQ35) {
  const HardwareProfile p = ResolveHardware(Spec(GuestOs::kWindows11));
  EXPECT_EQ(p.firmware, Firmware::kUefiSecure);
  EXPECT_TRUE(p.tpm);
  EXPECT_EQ(p.machine, "q35");
  EXPECT_EQ(p.disk_bus, DiskBus::kSata);
  EXPECT_EQ(p.cdrom_bus, DiskBus::kSata);
  EXPECT_EQ(p.nic, NicModel::kE1000e);
  EXPECT_NE(p.firmware_reason.find("Secure Boot"), std::string::npos) << p.firmware_reason;
  EXPECT_NE(p.tpm_reason.find("TPM 2.0"), std::string::npos) << p.tpm_reason;
}

// A kernel from the host is not signed for Microsoft's keys: a direct boot keeps SeaBIOS, and
// the catalog's Windows entries still boot kvmrun's test guest.
TEST(HardwareProfileTest, ADirectKernelBootKeepsBiosAndNoTpm) {
  const HardwareProfile p = ResolveHardware(Spec(GuestOs::kWindows11, true));
  EXPECT_EQ(p.firmware, Firmware::kBios);
  EXPECT_FALSE(p.tpm);
  EXPECT_EQ(p.machine, "");
}

TEST(HardwareProfileTest, EachOsGetsBusesAndACardItHasDriversFor) {
  struct Row {
    GuestOs os;
    DiskBus disk;
    DiskBus cdrom;
    NicModel nic;
  };
  for (const Row& row : {
           Row{GuestOs::kWindowsXp, DiskBus::kIde, DiskBus::kIde, NicModel::kE1000},
           Row{GuestOs::kWindows2003, DiskBus::kIde, DiskBus::kIde, NicModel::kE1000},
           Row{GuestOs::kWindows7, DiskBus::kSata, DiskBus::kSata, NicModel::kE1000},
           Row{GuestOs::kWindows10, DiskBus::kSata, DiskBus::kSata, NicModel::kE1000e},
           Row{GuestOs::kWindowsServer2022, DiskBus::kSata, DiskBus::kSata, NicModel::kE1000e},
           Row{GuestOs::kLinux, DiskBus::kVirtio, DiskBus::kSata, NicModel::kVirtio},
           Row{GuestOs::kFreeBsd, DiskBus::kVirtio, DiskBus::kSata, NicModel::kVirtio},
           Row{GuestOs::kLinuxLegacy, DiskBus::kIde, DiskBus::kIde, NicModel::kE1000},
           Row{GuestOs::kOther, DiskBus::kIde, DiskBus::kIde, NicModel::kE1000},
       }) {
    SCOPED_TRACE(std::string(ToString(row.os)));
    const HardwareProfile p = ResolveHardware(Spec(row.os));
    EXPECT_EQ(p.disk_bus, row.disk);
    EXPECT_EQ(p.cdrom_bus, row.cdrom);
    EXPECT_EQ(p.nic, row.nic);
    EXPECT_EQ(p.firmware, Firmware::kBios);
    EXPECT_FALSE(p.tpm);
    EXPECT_FALSE(p.disk_bus_reason.empty());
    EXPECT_FALSE(p.nic_reason.empty());
  }
}

TEST(HardwareProfileTest, WhatTheSpecAsksForWinsAndSaysSo) {
  VmSpec spec = Spec(GuestOs::kWindows11);
  spec.firmware = Firmware::kUefi;
  spec.tpm = false;
  spec.nic_model = NicModel::kVirtio;
  spec.machine = "pc";
  const HardwareProfile p = ResolveHardware(spec);
  EXPECT_EQ(p.firmware, Firmware::kUefi);
  EXPECT_EQ(p.firmware_reason, "asked for");
  EXPECT_FALSE(p.tpm);
  EXPECT_EQ(p.tpm_reason, "asked for");
  EXPECT_EQ(p.nic, NicModel::kVirtio);
  EXPECT_EQ(p.machine, "pc");
}

TEST(HardwareProfileTest, SecureBootNeedsQ35) {
  VmSpec spec = Spec(GuestOs::kLinux);
  spec.firmware = Firmware::kUefiSecure;
  EXPECT_EQ(ResolveHardware(spec).machine, "q35");
  spec.machine = "pc-q35-7.2";
  EXPECT_EQ(ResolveHardware(spec).machine, "pc-q35-7.2");
  spec.machine = "pc";
  try {
    ResolveHardware(spec);
    FAIL() << "uefi-secure on pc accepted";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()),
              "machine: 'pc' cannot run uefi-secure firmware, which needs SMM on q35; valid: "
              "q35 or pc-q35-X.Y, or UEFI firmware without Secure Boot");
  }
  EXPECT_TRUE(IsQ35Machine("q35"));
  EXPECT_TRUE(IsQ35Machine("pc-q35-10.0"));
  EXPECT_FALSE(IsQ35Machine("pc-i440fx-7.2"));
  EXPECT_FALSE(IsQ35Machine("q35x"));
}

TEST(HardwareProfileTest, ABusTakesNoMoreDevicesThanItHasPorts) {
  VmSpec spec = Spec(GuestOs::kWindows10);
  for (int i = 0; i < 5; ++i) spec.disks.push_back(ParseDiskArgument("/d.img", false, false));
  spec.cdroms = {"/a.iso"};
  EXPECT_NO_THROW(ResolveHardware(spec));  // six on sata
  spec.cdroms.push_back("/b.iso");
  EXPECT_THROW(ResolveHardware(spec), UsageError);
  spec.disks.back().bus = DiskBus::kVirtio;
  EXPECT_NO_THROW(ResolveHardware(spec));

  VmSpec xp = Spec(GuestOs::kWindowsXp);
  xp.disks = {ParseDiskArgument("/a.img", false, false), ParseDiskArgument("/b.img", false, false),
              ParseDiskArgument("/c.img", false, false)};
  xp.cdroms = {"/x.iso"};
  EXPECT_NO_THROW(ResolveHardware(xp));  // four on ide
  xp.cdroms.push_back("/y.iso");
  EXPECT_THROW(ResolveHardware(xp), UsageError);
}

TEST(HardwareProfileTest, TheDisplayDeviceSuitsTheOsAndTheProtocol) {
  VmSpec spec = Spec(GuestOs::kLinux);
  EXPECT_EQ(ResolveHardware(spec).display_device, "");
  spec.display = ParseDisplayArgument("vnc");
  EXPECT_EQ(ResolveHardware(spec).display_device, "virtio-vga");
  spec.os = GuestOs::kWindows11;
  EXPECT_EQ(ResolveHardware(spec).display_device, "VGA");
  spec.display = ParseDisplayArgument("spice");
  EXPECT_EQ(ResolveHardware(spec).display_device, "qxl-vga");
}

TEST(HardwareProfileTest, SizingFollowsWhatTheInstallerNeeds) {
  EXPECT_EQ(RecommendedSizing(GuestOs::kWindows11, false).memory_mib, 4096u);
  EXPECT_EQ(RecommendedSizing(GuestOs::kWindows11, false).cpus, 2);
  EXPECT_EQ(RecommendedSizing(GuestOs::kWindows11, true).memory_mib, 512u);
  EXPECT_EQ(RecommendedSizing(GuestOs::kWindows10, false).memory_mib, 2048u);
  EXPECT_EQ(RecommendedSizing(GuestOs::kWindowsXp, false).memory_mib, 512u);
  EXPECT_EQ(RecommendedSizing(GuestOs::kLinux, false).memory_mib, 512u);
  EXPECT_EQ(RecommendedSizing(GuestOs::kLinux, false).cpus, 1);
}

TEST(HardwareProfileTest, EveryRowHasAValueAndAReason) {
  const VmSpec spec = Spec(GuestOs::kWindows11);
  const auto rows = HardwareRows(ResolveHardware(spec), spec);
  std::vector<std::string> items;
  for (const HardwareRow& row : rows) {
    items.push_back(row.item);
    EXPECT_FALSE(row.value.empty()) << row.item;
    EXPECT_FALSE(row.reason.empty()) << row.item;
  }
  EXPECT_EQ(items, (std::vector<std::string>{"size", "firmware", "tpm", "machine", "disk bus",
                                             "cdrom bus", "network card", "display", "boot"}));
}

}  // namespace
}  // namespace kvmrun

#include "kvmrun/guest_os.h"

#include <string>

#include "kvmrun/error.h"
#include "policy/names.h"

namespace kvmrun {
namespace {

constexpr std::string_view kXpAliases[] = {"winxp", "windowsxp", "xp"};
constexpr std::string_view k2003Aliases[] = {"win2003", "win2k3", "windows-server-2003",
                                             "windows2003"};
constexpr std::string_view kVistaAliases[] = {"winvista", "vista", "windows-server-2008", "win2008",
                                              "win2k8"};
constexpr std::string_view k7Aliases[] = {"win7", "windows7", "windows-server-2008r2", "win2008r2",
                                          "win2k8r2"};
constexpr std::string_view k8Aliases[] = {"win8", "windows8", "windows-8.1", "win8.1", "win81"};
constexpr std::string_view k2012Aliases[] = {
    "win2012", "win2k12", "windows2012", "windows-server-2012r2", "win2012r2", "win2k12r2"};
constexpr std::string_view k10Aliases[] = {"win10", "windows10"};
constexpr std::string_view k11Aliases[] = {"win11", "windows11"};
constexpr std::string_view k2016Aliases[] = {"win2016", "win2k16", "windows2016"};
constexpr std::string_view k2019Aliases[] = {"win2019", "win2k19", "windows2019"};
constexpr std::string_view k2022Aliases[] = {"win2022", "win2k22", "windows2022"};
constexpr std::string_view k2025Aliases[] = {"win2025", "win2k25", "windows2025"};
// RHEL/CentOS 5.5 and later use kvm-clock by default, so "rhel5" is a modern Linux here; the
// legacy rows are for the releases before it (and anything else without kvm-clock).
constexpr std::string_view kLinuxAliases[] = {
    "linux-modern", "ubuntu", "debian", "fedora", "rhel",  "centos", "rhel5",
    "centos5",      "rhel6",  "rhel7",  "rhel8",  "rhel9", "alpine", "arch"};
constexpr std::string_view kLegacyAliases[] = {
    "legacy-linux", "linux-old", "linux24", "linux-2.4", "linux-legacy-32",
    "rhel4",        "centos4",   "rhel5.4", "centos5.4", "sles10"};
constexpr std::string_view kLegacy64Aliases[] = {"legacy-linux-64", "rhel4-64", "rhel5.4-64",
                                                 "centos5.4-64"};
constexpr std::string_view kFreeBsdAliases[] = {"bsd", "fbsd", "freebsd13", "freebsd14"};
constexpr std::string_view kOtherAliases[] = {"unknown", "generic"};

constexpr GuestOsInfo kCatalog[] = {
    {GuestOs::kWindowsXp, GuestFamily::kWindows, "windows-xp", "Windows XP", kXpAliases},
    {GuestOs::kWindows2003, GuestFamily::kWindows, "windows-2003", "Windows Server 2003",
     k2003Aliases},
    {GuestOs::kWindowsVista, GuestFamily::kWindows, "windows-vista", "Windows Vista / Server 2008",
     kVistaAliases},
    {GuestOs::kWindows7, GuestFamily::kWindows, "windows-7", "Windows 7 / Server 2008 R2",
     k7Aliases},
    {GuestOs::kWindows8, GuestFamily::kWindows, "windows-8", "Windows 8 / 8.1", k8Aliases},
    {GuestOs::kWindows10, GuestFamily::kWindows, "windows-10", "Windows 10", k10Aliases},
    {GuestOs::kWindows11, GuestFamily::kWindows, "windows-11", "Windows 11", k11Aliases},
    {GuestOs::kWindowsServer2012, GuestFamily::kWindows, "windows-server-2012",
     "Windows Server 2012 / 2012 R2", k2012Aliases},
    {GuestOs::kWindowsServer2016, GuestFamily::kWindows, "windows-server-2016",
     "Windows Server 2016", k2016Aliases},
    {GuestOs::kWindowsServer2019, GuestFamily::kWindows, "windows-server-2019",
     "Windows Server 2019", k2019Aliases},
    {GuestOs::kWindowsServer2022, GuestFamily::kWindows, "windows-server-2022",
     "Windows Server 2022", k2022Aliases},
    {GuestOs::kWindowsServer2025, GuestFamily::kWindows, "windows-server-2025",
     "Windows Server 2025", k2025Aliases},
    {GuestOs::kLinux, GuestFamily::kLinux, "linux", "Linux >= 2.6.26 with kvm-clock (RHEL >= 5.5)",
     kLinuxAliases},
    {GuestOs::kLinuxLegacy, GuestFamily::kLinux, "linux-legacy",
     "32-bit Linux without kvm-clock: 2.4, early 2.6, RHEL 4, RHEL 5 before 5.5", kLegacyAliases},
    {GuestOs::kLinuxLegacy64, GuestFamily::kLinux, "linux-legacy-64",
     "64-bit Linux without kvm-clock: early 2.6, RHEL 4, RHEL 5 before 5.5", kLegacy64Aliases},
    {GuestOs::kFreeBsd, GuestFamily::kBsd, "freebsd", "FreeBSD 13 and later", kFreeBsdAliases},
    {GuestOs::kOther, GuestFamily::kOther, "other", "Anything else: QEMU's own defaults",
     kOtherAliases},
};

}  // namespace

std::span<const GuestOsInfo> GuestOsCatalog() { return kCatalog; }

const GuestOsInfo& Describe(GuestOs os) {
  // The catalog is in enum order; the unit test checks that it stays so.
  return kCatalog[static_cast<std::size_t>(os)];
}

std::string_view ToString(GuestOs os) { return Describe(os).name; }

std::optional<GuestOs> FindGuestOs(std::string_view name) {
  for (const GuestOsInfo& info : kCatalog) {
    if (EqualsIgnoreCase(info.name, name)) return info.os;
    for (std::string_view alias : info.aliases) {
      if (EqualsIgnoreCase(alias, name)) return info.os;
    }
  }
  return std::nullopt;
}

GuestOs ParseGuestOs(std::string_view name) {
  if (auto os = FindGuestOs(name)) return *os;
  std::string valid;
  for (const GuestOsInfo& info : kCatalog) {
    if (!valid.empty()) valid += ", ";
    valid += info.name;
  }
  throw UsageError("os", "unknown guest OS '" + std::string(name) + "'; valid: " + valid +
                             " (aliases such as win11 or rhel5 work too)");
}

}  // namespace kvmrun

#include "kvmrun/guest_os.h"

#include <string>

#include "kvmrun/error.h"
#include "policy/names.h"

namespace kvmrun {
namespace {

constexpr std::string_view kXpAliases[] = {"winxp", "windowsxp", "xp"};
constexpr std::string_view k2003Aliases[] = {"win2003", "win2k3", "windows-server-2003",
                                             "windows2003"};
constexpr std::string_view k7Aliases[] = {"win7", "windows7", "windows-server-2008r2", "win2008r2"};
constexpr std::string_view k10Aliases[] = {"win10", "windows10"};
constexpr std::string_view k11Aliases[] = {"win11", "windows11"};
constexpr std::string_view k2016Aliases[] = {"win2016", "win2k16", "windows2016"};
constexpr std::string_view k2019Aliases[] = {"win2019", "win2k19", "windows2019"};
constexpr std::string_view k2022Aliases[] = {"win2022", "win2k22", "windows2022"};
constexpr std::string_view k2025Aliases[] = {"win2025", "win2k25", "windows2025"};
constexpr std::string_view kLinuxAliases[] = {"linux-modern", "ubuntu", "debian", "fedora",
                                              "rhel",         "centos", "rhel6",  "rhel7",
                                              "rhel8",        "rhel9",  "alpine", "arch"};
constexpr std::string_view kLegacyAliases[] = {"legacy-linux", "linux-old", "linux24",
                                               "linux-2.4",    "rhel4",     "rhel5",
                                               "centos4",      "centos5",   "sles10"};
constexpr std::string_view kFreeBsdAliases[] = {"bsd", "fbsd", "freebsd13", "freebsd14"};
constexpr std::string_view kOtherAliases[] = {"unknown", "generic"};

constexpr GuestOsInfo kCatalog[] = {
    {GuestOs::kWindowsXp, GuestFamily::kWindows, "windows-xp", "Windows XP", kXpAliases},
    {GuestOs::kWindows2003, GuestFamily::kWindows, "windows-2003", "Windows Server 2003",
     k2003Aliases},
    {GuestOs::kWindows7, GuestFamily::kWindows, "windows-7", "Windows 7 / Server 2008 R2",
     k7Aliases},
    {GuestOs::kWindows10, GuestFamily::kWindows, "windows-10", "Windows 10", k10Aliases},
    {GuestOs::kWindows11, GuestFamily::kWindows, "windows-11", "Windows 11", k11Aliases},
    {GuestOs::kWindowsServer2016, GuestFamily::kWindows, "windows-server-2016",
     "Windows Server 2016", k2016Aliases},
    {GuestOs::kWindowsServer2019, GuestFamily::kWindows, "windows-server-2019",
     "Windows Server 2019", k2019Aliases},
    {GuestOs::kWindowsServer2022, GuestFamily::kWindows, "windows-server-2022",
     "Windows Server 2022", k2022Aliases},
    {GuestOs::kWindowsServer2025, GuestFamily::kWindows, "windows-server-2025",
     "Windows Server 2025", k2025Aliases},
    {GuestOs::kLinux, GuestFamily::kLinux, "linux", "Linux >= 2.6.27 with kvm-clock",
     kLinuxAliases},
    {GuestOs::kLinuxLegacy, GuestFamily::kLinux, "linux-legacy",
     "Linux that counts timer ticks: 2.4, early 2.6, RHEL 4/5", kLegacyAliases},
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

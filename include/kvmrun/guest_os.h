// The guest operating systems kvmrun has a clock policy for.
//
// Each catalog entry has a canonical name (what `kvmrun policy --list` prints and what JSON
// carries), aliases people commonly type (win11, rhel5, ...), and a one-line description.
// Lookup ignores case.
#ifndef KVMRUN_GUEST_OS_H_
#define KVMRUN_GUEST_OS_H_

#include <array>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace kvmrun {

enum class GuestOs {
  kWindowsXp,
  kWindows2003,
  kWindowsVista,
  kWindows7,
  kWindows8,
  kWindows10,
  kWindows11,
  kWindowsServer2012,
  kWindowsServer2016,
  kWindowsServer2019,
  kWindowsServer2022,
  kWindowsServer2025,
  kLinux,
  kLinuxLegacy,
  kLinuxLegacy64,
  kFreeBsd,
  kOther,
};

enum class GuestFamily { kWindows, kLinux, kBsd, kOther };

struct GuestOsInfo {
  GuestOs os;
  GuestFamily family;
  std::string_view name;         // canonical, e.g. "windows-11"
  std::string_view description;  // e.g. "Windows 11"
  std::span<const std::string_view> aliases;
};

// Every catalog entry, in a stable order (the order of GuestOs).
std::span<const GuestOsInfo> GuestOsCatalog();

const GuestOsInfo& Describe(GuestOs os);
std::string_view ToString(GuestOs os);  // the canonical name

// The OS whose canonical name or alias equals `name`, ignoring case.
std::optional<GuestOs> FindGuestOs(std::string_view name);

// Like FindGuestOs, but throws UsageError naming the bad value and the valid names.
GuestOs ParseGuestOs(std::string_view name);

}  // namespace kvmrun

#endif  // KVMRUN_GUEST_OS_H_

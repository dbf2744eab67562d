#include "kvmrun/guest_os.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "kvmrun/error.h"

namespace kvmrun {
namespace {

TEST(GuestOsTest, CatalogIsInEnumOrderAndDescribeFindsEachEntry) {
  const auto catalog = GuestOsCatalog();
  ASSERT_EQ(catalog.size(), static_cast<std::size_t>(GuestOs::kOther) + 1);
  for (std::size_t i = 0; i < catalog.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(catalog[i].os), i) << catalog[i].name;
    EXPECT_EQ(&Describe(catalog[i].os), &catalog[i]);
  }
}

TEST(GuestOsTest, CoversTheOperatingSystemsTheIssueNames) {
  for (const char* name : {"windows-xp", "windows-2003", "windows-7", "windows-10", "windows-11",
                           "windows-server-2016", "windows-server-2019", "windows-server-2022",
                           "windows-server-2025", "linux", "linux-legacy", "freebsd", "other"}) {
    const auto os = FindGuestOs(name);
    ASSERT_TRUE(os.has_value()) << name;
    EXPECT_EQ(ToString(*os), name);
  }
}

TEST(GuestOsTest, NamesAndAliasesAreUniqueIgnoringCase) {
  std::set<std::string> seen;
  for (const GuestOsInfo& info : GuestOsCatalog()) {
    std::vector<std::string_view> names(info.aliases.begin(), info.aliases.end());
    names.push_back(info.name);
    for (std::string_view name : names) {
      std::string lower(name);
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      EXPECT_TRUE(seen.insert(lower).second) << "duplicate name " << name;
    }
  }
}

TEST(GuestOsTest, AliasesAndCaseAreAccepted) {
  EXPECT_EQ(FindGuestOs("win11"), GuestOs::kWindows11);
  EXPECT_EQ(FindGuestOs("Windows11"), GuestOs::kWindows11);
  EXPECT_EQ(FindGuestOs("WINDOWS-11"), GuestOs::kWindows11);
  EXPECT_EQ(FindGuestOs("rhel5"), GuestOs::kLinux);  // 5.5+ use kvm-clock
  EXPECT_EQ(FindGuestOs("Win2012R2"), GuestOs::kWindowsServer2012);
  EXPECT_EQ(FindGuestOs("win8.1"), GuestOs::kWindows8);
  EXPECT_EQ(FindGuestOs("win2008"), GuestOs::kWindowsVista);
  EXPECT_EQ(FindGuestOs("win2008r2"), GuestOs::kWindows7);
  EXPECT_EQ(FindGuestOs("RHEL4"), GuestOs::kLinuxLegacy);
  EXPECT_EQ(FindGuestOs("win2k19"), GuestOs::kWindowsServer2019);
  EXPECT_EQ(FindGuestOs("winxp"), GuestOs::kWindowsXp);
  EXPECT_EQ(FindGuestOs("Debian"), GuestOs::kLinux);
}

TEST(GuestOsTest, UnknownNameIsAUsageErrorListingTheValidNames) {
  EXPECT_FALSE(FindGuestOs("windows-95").has_value());
  EXPECT_FALSE(FindGuestOs("").has_value());
  try {
    ParseGuestOs("windows-95");
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'windows-95'"), std::string::npos) << message;
    EXPECT_NE(message.find("windows-11"), std::string::npos) << message;
    EXPECT_NE(message.find("linux-legacy"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
  }
}

}  // namespace
}  // namespace kvmrun

// Names for parametrized tests: gtest allows letters, digits and '_' only.
#ifndef KVMRUN_TESTS_SUPPORT_TEST_NAMES_H_
#define KVMRUN_TESTS_SUPPORT_TEST_NAMES_H_

#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kvmrun/guest_os.h"

namespace kvmrun::testing {

// "windows-11" -> "windows_11"; parts are joined with '_'.
inline std::string TestName(std::string_view text) {
  std::string name(text);
  for (char& c : name) c = c == '-' ? '_' : c;
  return name;
}

// Every guest OS the catalog knows, in catalog order.
inline std::vector<GuestOs> AllGuestOs() {
  std::vector<GuestOs> all;
  for (const GuestOsInfo& info : GuestOsCatalog()) all.push_back(info.os);
  return all;
}

// Name generators for INSTANTIATE_TEST_SUITE_P.
struct OsName {
  template <typename Info>
  std::string operator()(const Info& info) const {
    return TestName(ToString(info.param));
  }
};
struct LabelAndOsName {
  template <typename Info>
  std::string operator()(const Info& info) const {
    return TestName(std::get<0>(info.param) + "_" + std::string(ToString(std::get<1>(info.param))));
  }
};

}  // namespace kvmrun::testing

#endif  // KVMRUN_TESTS_SUPPORT_TEST_NAMES_H_

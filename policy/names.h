// Case-insensitive lookup of enum values by their user-facing names.
//
// Every kvmrun enum that users type has a ToString() overload (a switch, so the compiler finds
// a missing case) and a constexpr array of all its values; these helpers build parsing and
// "valid values" lists on top of the two.
#ifndef KVMRUN_POLICY_NAMES_H_
#define KVMRUN_POLICY_NAMES_H_

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include "kvmrun/error.h"

namespace kvmrun {

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The value whose ToString() equals `text`, ignoring case.
template <typename E, std::size_t N>
std::optional<E> FindByName(std::string_view text, const std::array<E, N>& all) {
  for (E value : all) {
    if (EqualsIgnoreCase(ToString(value), text)) return value;
  }
  return std::nullopt;
}

// "a, b, c": the names of all values, for error messages and --help.
template <typename E, std::size_t N>
std::string JoinNames(const std::array<E, N>& all, std::string_view separator = ", ") {
  std::string out;
  for (E value : all) {
    if (!out.empty()) out += separator;
    out += ToString(value);
  }
  return out;
}

// FindByName, or UsageError(field, "invalid value '<text>'; valid: a, b, c").
template <typename E, std::size_t N>
E ParseName(std::string_view text, std::string_view field, const std::array<E, N>& all) {
  if (auto value = FindByName(text, all)) return *value;
  throw UsageError(std::string(field),
                   "invalid value '" + std::string(text) + "'; valid: " + JoinNames(all));
}

}  // namespace kvmrun

#endif  // KVMRUN_POLICY_NAMES_H_

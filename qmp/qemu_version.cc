#include "kvmrun/qemu_version.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "qmp/json_fields.h"

namespace kvmrun {
namespace {

bool ParseInt(std::string_view text, int& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && out >= 0;
}

}  // namespace

std::optional<QemuVersion> ParseQemuVersion(std::string_view text) {
  QemuVersion version;
  int* parts[] = {&version.major, &version.minor, &version.micro};
  std::size_t count = 0;
  while (true) {
    if (count == 3) return std::nullopt;
    const std::size_t dot = text.find('.');
    if (!ParseInt(text.substr(0, dot), *parts[count++])) return std::nullopt;
    if (dot == std::string_view::npos) break;
    text.remove_prefix(dot + 1);
  }
  if (count < 2) return std::nullopt;
  return version;
}

std::string ToString(const QemuVersion& version) {
  return std::to_string(version.major) + "." + std::to_string(version.minor) + "." +
         std::to_string(version.micro);
}

QemuVersion QemuVersionFromJson(const nlohmann::json& qemu) {
  const JsonFields version(qemu, "QEMU's version");
  return {static_cast<int>(version.Int("major", 0, 9999)),
          static_cast<int>(version.Int("minor", 0, 9999)),
          static_cast<int>(version.Int("micro", 0, 9999))};
}

}  // namespace kvmrun

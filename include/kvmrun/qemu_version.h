// A QEMU release number, as QEMU states it (QMP greeting, query-version, `-version`). A leaf:
// the QMP client and the policy tables both use it, and it depends on neither.
#ifndef KVMRUN_QEMU_VERSION_H_
#define KVMRUN_QEMU_VERSION_H_

#include <compare>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace kvmrun {

struct QemuVersion {
  int major = 0;
  int minor = 0;
  int micro = 0;

  friend auto operator<=>(const QemuVersion&, const QemuVersion&) = default;
};

// "7.2", "7.2.22" or "10.0.2"; nullopt when malformed.
std::optional<QemuVersion> ParseQemuVersion(std::string_view text);
std::string ToString(const QemuVersion& version);  // "7.2.22"

// The {"major": 7, "minor": 2, "micro": 22} object QEMU sends in its QMP greeting and in
// query-version. Throws nlohmann::json::exception when a member is missing or not a number.
QemuVersion QemuVersionFromJson(const nlohmann::json& qemu);

}  // namespace kvmrun

#endif  // KVMRUN_QEMU_VERSION_H_

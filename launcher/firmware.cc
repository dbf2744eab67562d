#include "kvmrun/firmware.h"

#include <fnmatch.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "kvmrun/error.h"
#include "kvmrun/hardware_profile.h"

namespace kvmrun {
namespace {

bool Has(const nlohmann::json& list, std::string_view value) {
  return list.is_array() && std::any_of(list.begin(), list.end(), [&](const nlohmann::json& v) {
           return v.is_string() && v.get<std::string>() == value;
         });
}

// The descriptor's image for x86_64 UEFI on flash, or nullopt for any other descriptor.
std::optional<FirmwareImage> Parse(const std::string& path) {
  std::ifstream in(path);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_object() || !Has(j.value("interface-types", nlohmann::json()), "uefi")) {
    return std::nullopt;
  }
  const nlohmann::json mapping = j.value("mapping", nlohmann::json::object());
  if (mapping.value("device", "") != "flash") return std::nullopt;
  FirmwareImage image;
  image.descriptor = path;
  image.description = j.value("description", "");
  const auto file = [&](const char* key) {
    const nlohmann::json entry = mapping.value(key, nlohmann::json::object());
    return entry.is_object() && entry.value("format", "raw") == "raw" ? entry.value("filename", "")
                                                                      : std::string();
  };
  image.code = file("executable");
  image.vars_template = file("nvram-template");
  if (image.code.empty() || image.vars_template.empty()) return std::nullopt;
  bool x86_64 = false;
  for (const nlohmann::json& target : j.value("targets", nlohmann::json::array())) {
    if (!target.is_object() || target.value("architecture", "") != "x86_64") continue;
    x86_64 = true;
    for (const nlohmann::json& machine : target.value("machines", nlohmann::json::array())) {
      if (machine.is_string()) image.machines.push_back(machine.get<std::string>());
    }
  }
  if (!x86_64) return std::nullopt;
  const nlohmann::json features = j.value("features", nlohmann::json::array());
  image.secure_boot = Has(features, "secure-boot");
  image.enrolled_keys = Has(features, "enrolled-keys");
  image.requires_smm = Has(features, "requires-smm");
  return image;
}

// A machine type as descriptors' globs see it: aliases become a versioned name.
std::string VersionedMachine(std::string_view machine) {
  if (machine.empty() || machine == "pc") return "pc-i440fx-99.0";
  if (machine == "q35") return "pc-q35-99.0";
  return std::string(machine);
}

}  // namespace

std::vector<std::string> DefaultFirmwareDescriptorDirs() {
  std::vector<std::string> dirs = {"/usr/share/qemu/firmware", "/etc/qemu/firmware"};
  if (const char* config = std::getenv("XDG_CONFIG_HOME"); config != nullptr && *config != '\0') {
    dirs.push_back(std::string(config) + "/qemu/firmware");
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    dirs.push_back(std::string(home) + "/.config/qemu/firmware");
  }
  return dirs;
}

std::vector<FirmwareImage> ReadFirmwareDescriptors(const std::vector<std::string>& dirs) {
  std::map<std::string, std::string> by_name;  // file name -> path; later directories win
  for (const std::string& dir : dirs) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.path().extension() != ".json") continue;
      by_name[entry.path().filename().string()] = entry.path().string();
    }
  }
  std::vector<FirmwareImage> images;
  for (const auto& [name, path] : by_name) {
    if (auto image = Parse(path)) images.push_back(std::move(*image));
  }
  return images;
}

FirmwareImage FindFirmware(Firmware firmware, std::string_view machine,
                           const std::vector<std::string>& dirs) {
  const std::string versioned = VersionedMachine(machine);
  const bool secure = firmware == Firmware::kUefiSecure;
  for (const FirmwareImage& image : ReadFirmwareDescriptors(dirs)) {
    const bool runs_here = std::any_of(
        image.machines.begin(), image.machines.end(),
        [&](const std::string& glob) { return fnmatch(glob.c_str(), versioned.c_str(), 0) == 0; });
    if (!runs_here) continue;
    if (secure ? image.secure_boot && image.enrolled_keys
               : !image.secure_boot && !image.requires_smm) {
      return image;
    }
  }
  std::string where;
  for (const std::string& dir : dirs) where += (where.empty() ? "" : ", ") + dir;
  throw UsageError("firmware",
                   "no " + std::string(ToString(firmware)) + " firmware for machine type '" +
                       (machine.empty() ? "pc" : std::string(machine)) + "' is described in " +
                       where + " (Debian's package ovmf installs it: apt-get install ovmf)");
}

}  // namespace kvmrun

// UEFI firmware for a VM, found the way QEMU's firmware interoperability spec
// (docs/interop/firmware.json) intends and libvirt does it: from the JSON descriptors
// packages install (Debian's ovmf: /usr/share/qemu/firmware/*.json), never from hard-coded
// file names. A descriptor names the code image, the template of the variable store, the
// machine types it runs on and its features (secure-boot, enrolled-keys, requires-smm).
#ifndef KVMRUN_FIRMWARE_H_
#define KVMRUN_FIRMWARE_H_

#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/vm_spec.h"

namespace kvmrun {

struct FirmwareImage {
  std::string descriptor;     // the JSON file it was described by
  std::string description;    // the descriptor's own words
  std::string code;           // the executable image, mapped read-only
  std::string vars_template;  // copied once per VM: the guest writes its variables there
  bool secure_boot = false;
  bool enrolled_keys = false;  // Microsoft's keys: Secure Boot enforced from the first boot
  bool requires_smm = false;
  std::vector<std::string> machines;  // globs, "pc-q35-*"
};

// The directories descriptors are read from, lowest precedence first: the distribution's,
// the host's, the user's ($XDG_CONFIG_HOME/qemu/firmware). A file in a later directory
// replaces one of the same name in an earlier one; the remaining files go by name.
std::vector<std::string> DefaultFirmwareDescriptorDirs();

// Every x86_64 UEFI flash descriptor in `dirs`, in the order above. Files that are not such a
// descriptor, or do not parse, are skipped.
std::vector<FirmwareImage> ReadFirmwareDescriptors(const std::vector<std::string>& dirs);

// The first image that gives `firmware` (kUefi: no Secure Boot and no SMM needed;
// kUefiSecure: Secure Boot with keys enrolled) on `machine` ("q35", "pc-q35-7.2", "" or "pc"
// for i440FX). UsageError when there is none, naming the package that has one.
FirmwareImage FindFirmware(Firmware firmware, std::string_view machine,
                           const std::vector<std::string>& dirs = DefaultFirmwareDescriptorDirs());

}  // namespace kvmrun

#endif  // KVMRUN_FIRMWARE_H_

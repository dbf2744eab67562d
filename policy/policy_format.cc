#include "kvmrun/policy_format.h"

#include <algorithm>
#include <sstream>

#include "kvmrun/error.h"
#include "kvmrun/hardware_profile.h"
#include "policy/text_table.h"

namespace kvmrun {
namespace {

bool IsShellSafe(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("@%+=:,./_-").find(c) != std::string_view::npos;
}

nlohmann::json RationaleJson(const Rationale& why) {
  return {{"reason", why.reason}, {"source", why.source}, {"overridden", why.overridden}};
}

Rationale RationaleFromJson(const nlohmann::json& json, const std::string& where) {
  if (!json.is_object()) throw UsageError("policy JSON: '" + where + "' must be an object");
  Rationale why;
  try {
    why.reason = json.at("reason").get<std::string>();
    why.source = json.at("source").get<std::string>();
    why.overridden = json.value("overridden", false);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError("policy JSON: '" + where + "': " + e.what());
  }
  return why;
}

// `fallback`, when given, is taken for a setting that policy files older than the setting lack.
template <typename T, typename Parse>
Choice<T> ChoiceFromJson(const nlohmann::json& settings, ClockSetting setting, Parse parse,
                         const Choice<T>* fallback = nullptr) {
  const std::string name(ToString(setting));
  if (!settings.contains(name) && fallback != nullptr) return *fallback;
  if (!settings.contains(name)) throw UsageError("policy JSON: missing setting '" + name + "'");
  const nlohmann::json& entry = settings.at(name);
  if (!entry.is_object() || !entry.contains("value") || !entry.at("value").is_string()) {
    throw UsageError("policy JSON: setting '" + name + "' needs a string 'value'");
  }
  return Choice<T>{parse(entry.at("value").get<std::string>(), "policy JSON '" + name + "'"),
                   RationaleFromJson(entry, name)};
}

std::string XmlTimer(std::string_view name, std::string_view attribute, std::string_view value) {
  return "  <timer name='" + std::string(name) + "' " + std::string(attribute) + "='" +
         std::string(value) + "'/>\n";
}

std::string YesNo(Toggle t) { return t == Toggle::kOn ? "yes" : "no"; }

}  // namespace

std::string ShellQuote(std::string_view arg) {
  if (!arg.empty() && std::all_of(arg.begin(), arg.end(), IsShellSafe)) return std::string(arg);
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string ShellJoin(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& arg : argv) {
    if (!out.empty()) out += ' ';
    out += ShellQuote(arg);
  }
  return out;
}

nlohmann::json ClockPolicyToJson(const ClockPolicy& policy) {
  nlohmann::json settings = nlohmann::json::object();
  for (ClockSetting setting : kAllClockSettings) {
    nlohmann::json entry = RationaleJson(SettingRationale(policy, setting));
    entry["value"] = SettingValue(policy, setting);
    settings[std::string(ToString(setting))] = entry;
  }
  nlohmann::json hints = nlohmann::json::array();
  for (const GuestHint& hint : policy.guest_hints) {
    nlohmann::json entry = RationaleJson(hint.why);
    entry["setting"] = hint.setting;
    hints.push_back(entry);
  }
  return {{"os", ToString(policy.os)}, {"settings", settings}, {"guest_hints", hints}};
}

ClockPolicy ClockPolicyFromJson(const nlohmann::json& json) {
  if (!json.is_object() || !json.contains("os") || !json.at("os").is_string()) {
    throw UsageError("policy JSON: needs an object with a string 'os'");
  }
  if (!json.contains("settings") || !json.at("settings").is_object()) {
    throw UsageError("policy JSON: needs an object 'settings'");
  }
  const nlohmann::json& settings = json.at("settings");
  ClockPolicy policy;
  policy.os = ParseGuestOs(json.at("os").get<std::string>());
  const ClockPolicy defaults = MakeClockPolicy(policy.os);
  policy.rtc_base = ChoiceFromJson<RtcBase>(settings, ClockSetting::kRtcBase, ParseRtcBase);
  policy.rtc_policy =
      ChoiceFromJson<RtcTickPolicy>(settings, ClockSetting::kRtcPolicy, ParseRtcTickPolicy);
  policy.rtc_clock = ChoiceFromJson<RtcClock>(settings, ClockSetting::kRtcClock, ParseRtcClock,
                                              &defaults.rtc_clock);
  policy.pit_policy =
      ChoiceFromJson<PitTickPolicy>(settings, ClockSetting::kPitPolicy, ParsePitTickPolicy);
  policy.hpet = ChoiceFromJson<Toggle>(settings, ClockSetting::kHpet, ParseToggle);
  policy.hv_time = ChoiceFromJson<Toggle>(settings, ClockSetting::kHvTime, ParseToggle);
  policy.hyperv =
      ChoiceFromJson<HypervSet>(settings, ClockSetting::kHyperv, ParseHypervSet, &defaults.hyperv);
  policy.kvmclock = ChoiceFromJson<Toggle>(settings, ClockSetting::kKvmclock, ParseToggle);
  if (json.contains("guest_hints")) {
    const nlohmann::json& hints = json.at("guest_hints");
    if (!hints.is_array()) throw UsageError("policy JSON: 'guest_hints' must be an array");
    for (const nlohmann::json& hint : hints) {
      if (!hint.is_object() || !hint.contains("setting") || !hint.at("setting").is_string()) {
        throw UsageError("policy JSON: each guest hint needs a string 'setting'");
      }
      policy.guest_hints.push_back(
          {hint.at("setting").get<std::string>(), RationaleFromJson(hint, "guest_hints")});
    }
  }
  return policy;
}

nlohmann::json PolicyReportJson(const ClockPolicy& policy, const ClockRendering& rendering,
                                const RenderTarget& target) {
  nlohmann::json rendered = nlohmann::json::array();
  for (const RenderedSetting& s : rendering.settings) {
    rendered.push_back({{"setting", ToString(s.setting)},
                        {"value", s.value},
                        {"rendered", s.rendered},
                        {"note", s.note},
                        {"satisfiable", s.satisfiable},
                        {"qemu_default", s.qemu_default}});
  }
  return {
      {"policy", ClockPolicyToJson(policy)},
      {"target",
       {{"qemu_version", ToString(target.caps.version)},
        {"accel", ToString(target.accel)},
        {"accel_note", target.accel_note},
        {"capabilities", target.caps_source},
        {"cpu_model", target.cpu_model}}},
      {"rendering", rendered},
      {"argv", ClockArgv(rendering, target.cpu_model)},
      {"notes", rendering.Notes()},
  };
}

std::string LibvirtClockXml(const ClockPolicy& policy) {
  // The mapping libvirt 9's QEMU driver really uses (qemu_command.c, checked against
  // `virsh domxml-to-native` by tests/integration/libvirt_parity_test.cc): rtc catchup ->
  // driftfix=slew, rtc delay -> no driftfix (QEMU's discard; libvirt refuses rtc 'discard'),
  // pit delay/discard -> kvm-pit.lost_tick_policy, hpet no -> -no-hpet, hpet yes -> nothing,
  // hypervclock yes -> hv-time alone, kvmclock -> kvmclock=on|off.
  std::string xml = "<clock offset='" + std::string(ToString(policy.rtc_base.value)) + "'>\n";
  if (policy.rtc_policy.value == RtcTickPolicy::kSlew) {
    xml += XmlTimer("rtc", "tickpolicy", "catchup");
  } else {
    xml += "  <!-- libvirt's rtc tickpolicy 'delay' is QEMU's discard (no driftfix) -->\n";
    xml += XmlTimer("rtc", "tickpolicy", "delay");
  }
  if (policy.rtc_clock.value != RtcClock::kHost) {
    xml += "  <!-- -rtc clock=" + std::string(ToString(policy.rtc_clock.value)) +
           ": libvirt has no equivalent -->\n";
  }
  xml += XmlTimer("pit", "tickpolicy", ToString(policy.pit_policy.value));
  xml += XmlTimer("hpet", "present", YesNo(policy.hpet.value));
  xml += XmlTimer("kvmclock", "present", YesNo(policy.kvmclock.value));
  xml += XmlTimer("hypervclock", "present", YesNo(policy.hv_time.value));
  return xml + "</clock>\n";
}

std::string LibvirtFeaturesXml(const ClockPolicy& policy) {
  const std::vector<HypervFeature> features = HypervFeatures(policy.hyperv.value);
  if (features.empty()) return "";
  std::string xml = "<features>\n  <hyperv mode='custom'>\n";
  for (const HypervFeature& f : features) {
    const bool needs_clock = std::find(f.needs.begin(), f.needs.end(), "hv-time") != f.needs.end();
    if (needs_clock && policy.hv_time.value == Toggle::kOff) continue;  // as RenderClock does
    std::string name(f.property.substr(3));                             // "hv-synic" -> "synic"
    if (name == "spinlocks") {
      xml += "    <spinlocks state='on' retries='8191'/>\n";  // 0x1fff
    } else {
      xml += "    <" + name + " state='on'/>\n";
    }
  }
  return xml + "  </hyperv>\n</features>\n";
}

std::string ExplainTable(const ClockPolicy& policy, const ClockRendering& rendering,
                         const RenderTarget& target) {
  std::ostringstream out;
  const GuestOsInfo& os = Describe(policy.os);
  out << "Clock policy for " << os.name << " (" << os.description << ") on QEMU "
      << ToString(target.caps.version) << " with " << ToString(target.accel) << " ["
      << target.caps_source << "]\n";
  if (!target.accel_note.empty()) out << target.accel_note << "\n";
  out << "\n";

  std::vector<TextRow> rows = {{"SETTING", "VALUE", "ARGV", "REASON"}};
  for (const RenderedSetting& s : rendering.settings) {
    const Rationale& why = SettingRationale(policy, s.setting);
    std::string value = s.value + (why.overridden ? " *" : "");
    std::string argv = s.rendered.empty() ? "-" : s.rendered;
    if (s.qemu_default) argv = "(QEMU default)";
    if (!s.satisfiable) argv = "(cannot: see notes)";
    rows.push_back({std::string(ToString(s.setting)), value, argv, why.reason});
    rows.push_back({"", "", "", "source: " + why.source});
  }
  out << FormatTable(rows);

  const auto notes = rendering.Notes();
  if (!notes.empty()) {
    out << "\nNotes:\n";
    for (const std::string& note : notes) out << "  " << note << "\n";
  }
  if (!policy.guest_hints.empty()) {
    out << "\nInside the guest (kvmrun cannot set these):\n";
    for (const GuestHint& hint : policy.guest_hints) {
      out << "  " << hint.setting << ": " << hint.why.reason << "\n    source: " << hint.why.source
          << "\n";
    }
  }
  if (std::any_of(rendering.settings.begin(), rendering.settings.end(),
                  [&](const RenderedSetting& s) {
                    return SettingRationale(policy, s.setting).overridden;
                  })) {
    out << "\n* set by an override\n";
  }
  out << "\nQEMU arguments: " << ShellJoin(ClockArgv(rendering, target.cpu_model)) << "\n";
  return out.str();
}

std::string HardwareTable(const VmSpec& spec) {
  std::ostringstream out;
  const GuestOsInfo& os = Describe(spec.os);
  out << "Hardware for " << os.name << " ("
      << (spec.kernel.empty() ? "booted from its disk or installer" : "a direct kernel boot")
      << "):\n\n";
  std::vector<TextRow> rows = {{"ITEM", "VALUE", "REASON"}};
  for (const HardwareRow& row : HardwareRows(ResolveHardware(spec), spec)) {
    rows.push_back({row.item, row.value, row.reason});
  }
  out << FormatTable(rows);
  return out.str();
}

}  // namespace kvmrun

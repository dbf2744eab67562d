#include "kvmrun/clock_rendering.h"

#include <algorithm>
#include <string>

namespace kvmrun {
namespace {

RenderedSetting Begin(ClockSetting setting, const ClockPolicy& policy) {
  RenderedSetting r;
  r.setting = setting;
  r.value = std::string(SettingValue(policy, setting));
  return r;
}

void LeaveDefault(RenderedSetting& setting) { setting.qemu_default = true; }

std::string JoinComma(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& part : parts) out += (out.empty() ? "" : ",") + part;
  return out;
}

// Whether the policy decided `choice` for this guest: every catalog OS decides every setting;
// `other` decides none (it stands for QEMU's own defaults) but what the user overrode.
template <typename T>
bool Decided(const ClockPolicy& policy, const Choice<T>& choice) {
  return policy.os != GuestOs::kOther || choice.why.overridden;
}

// -rtc base=, clock= and driftfix= share one option. What the policy decides is written even
// where it is QEMU's default today: the base (UTC or local time is the first thing a reader of
// the argv must see) and the lost-tick policy; it states the decision, survives a QEMU that
// changes a default, and is what libvirt, Nova and Proxmox write (the seed's
// `-rtc base=utc,driftfix=slew`). The clock source is written when it is not the host's.
void RenderRtc(const ClockPolicy& policy, const QemuCapabilities& caps, ClockRendering& out) {
  RenderedSetting base = Begin(ClockSetting::kRtcBase, policy);
  RenderedSetting drift = Begin(ClockSetting::kRtcPolicy, policy);
  RenderedSetting clock = Begin(ClockSetting::kRtcClock, policy);
  std::vector<std::string> parts;
  const auto part = [&](RenderedSetting& setting, bool write, const std::string& text) {
    if (!write) {
      LeaveDefault(setting);
      return;
    }
    parts.push_back(text);
    setting.rendered = "-rtc " + text;
  };
  part(base, Decided(policy, policy.rtc_base), "base=" + base.value);
  part(clock, policy.rtc_clock.value != RtcClock::kHost, "clock=" + clock.value);
  if (!Decided(policy, policy.rtc_policy)) {
    LeaveDefault(drift);
  } else if (policy.rtc_policy.value == RtcTickPolicy::kDiscard) {
    // QEMU's own spelling of mc146818rtc lost_tick_policy=discard.
    part(drift, true, "driftfix=none");
  } else if (caps.rtc_driftfix) {
    part(drift, true, "driftfix=slew");
  } else {
    drift.satisfiable = false;
    drift.note = "this QEMU has no -rtc driftfix: RTC interrupts cannot be slewed";
  }
  if (!parts.empty()) out.argv.insert(out.argv.end(), {"-rtc", JoinComma(parts)});
  out.settings.push_back(std::move(base));
  out.settings.push_back(std::move(drift));
  out.settings.push_back(std::move(clock));
}

// The PIT's fragment goes first, as the seed states the mission: `-no-kvm-pit-reinjection -rtc
// base=utc,driftfix=slew`. Both policies are written under KVM, delay included (libvirt writes
// kvm-pit.lost_tick_policy=delay); under TCG there is no kvm-pit to tell.
void RenderPit(const ClockPolicy& policy, const QemuCapabilities& caps, Accel accel,
               ClockRendering& out) {
  RenderedSetting pit = Begin(ClockSetting::kPitPolicy, policy);
  const bool discard = policy.pit_policy.value == PitTickPolicy::kDiscard;
  std::vector<std::string> argv;
  if (accel == Accel::kTcg) {
    // A -global for kvm-pit would be accepted and silently ignored: say so instead.
    pit.note = "TCG: the PIT is QEMU's isa-pit, which has no lost-tick policy";
  } else if (!Decided(policy, policy.pit_policy)) {
    LeaveDefault(pit);  // the in-kernel PIT re-injects unless told not to
  } else if (discard && caps.no_kvm_pit_reinjection_flag) {
    pit.rendered = "-no-kvm-pit-reinjection";
    pit.note = "the pre-3.0 spelling of kvm-pit.lost_tick_policy=discard";
    argv = {pit.rendered};
  } else if (caps.kvm_pit_lost_tick_policy) {
    const std::string global =
        std::string("kvm-pit.lost_tick_policy=") + (discard ? "discard" : "delay");
    pit.rendered = "-global " + global;
    argv = {"-global", global};
  } else if (!discard) {
    LeaveDefault(pit);
    pit.note = "this QEMU's kvm-pit has no lost_tick_policy; it re-injects (delay) as asked";
  } else {
    pit.satisfiable = false;
    pit.note = "this QEMU cannot turn off PIT re-injection";
  }
  out.argv.insert(out.argv.begin(), argv.begin(), argv.end());
  out.settings.push_back(std::move(pit));
}

// HPET on is never written: it is QEMU's default where the device is built, and hpet=on makes a
// QEMU built without it (RHEL-family) exit.
void RenderHpet(const ClockPolicy& policy, const QemuCapabilities& caps, ClockRendering& out) {
  RenderedSetting hpet = Begin(ClockSetting::kHpet, policy);
  const bool off = policy.hpet.value == Toggle::kOff;
  if (!caps.hpet_device) {
    hpet.satisfiable = off;
    hpet.note = off ? "this QEMU is built without an HPET: there is none to turn off"
                    : "this QEMU is built without an HPET device";
  } else if (!off) {
    LeaveDefault(hpet);
  } else if (caps.machine_hpet_property) {
    hpet.rendered = "-machine hpet=off";
    out.argv.insert(out.argv.end(), {"-machine", "hpet=off"});
  } else if (caps.no_hpet_flag) {
    hpet.rendered = "-no-hpet";
    hpet.note = "the pre-5.2 spelling of -machine hpet=off";
    out.argv.push_back(hpet.rendered);
  } else {
    hpet.satisfiable = false;
    hpet.note = "this QEMU has neither -machine hpet= nor -no-hpet";
  }
  out.settings.push_back(std::move(hpet));
}

std::string HostGapsNote(const std::vector<std::string>& properties, const HypervGaps& gaps) {
  std::string note;
  for (const std::string& property : properties) {
    note += (note.empty() ? "" : ", ") + property + " (" + gaps.at(property) + ")";
  }
  return "this host's KVM cannot give " + note + ": not written";
}

void RenderHvTime(const ClockPolicy& policy, const QemuCapabilities& caps, Accel accel,
                  const HypervGaps& host_gaps, ClockRendering& out) {
  RenderedSetting hv = Begin(ClockSetting::kHvTime, policy);
  if (policy.hv_time.value == Toggle::kOff) {
    LeaveDefault(hv);
  } else if (accel == Accel::kTcg) {
    hv.note = "TCG: Hyper-V enlightenments need KVM";
  } else if (!caps.HasHv("hv-time")) {
    hv.satisfiable = false;
    hv.note = "this QEMU has no hv-time CPU property";
  } else if (host_gaps.count("hv-time") != 0) {
    hv.satisfiable = false;
    hv.note = HostGapsNote({"hv-time"}, host_gaps);
  } else {
    out.cpu_features.emplace_back("hv-time");
    hv.rendered = "-cpu ...,hv-time";
  }
  out.settings.push_back(std::move(hv));
}

// The enlightenment set, less what this QEMU lacks and what would miss a requirement (QEMU
// refuses to start with, say, hv-stimer but no hv-time); every feature left out is named.
void RenderHyperv(const ClockPolicy& policy, const QemuCapabilities& caps, Accel accel,
                  const HypervGaps& host_gaps, ClockRendering& out) {
  RenderedSetting hv = Begin(ClockSetting::kHyperv, policy);
  const std::vector<HypervFeature> features = HypervFeatures(policy.hyperv.value);
  if (features.empty()) {
    LeaveDefault(hv);
    out.settings.push_back(std::move(hv));
    return;
  }
  // HypervFeatures() lists each feature after what it needs, so one pass decides them all.
  std::vector<std::string> written, absent, host_lacks, unmet;
  const auto have = [&](std::string_view property) {
    return std::find(out.cpu_features.begin(), out.cpu_features.end(), property) !=
           out.cpu_features.end();
  };
  for (const HypervFeature& f : features) {
    const std::string property(f.property);
    if (accel == Accel::kTcg || !caps.HasHv(property)) {
      absent.push_back(property);
      continue;
    }
    if (host_gaps.count(property) != 0) {
      host_lacks.push_back(property);
      continue;
    }
    const auto missing = std::find_if(f.needs.begin(), f.needs.end(),
                                      [&](std::string_view need) { return !have(need); });
    if (missing != f.needs.end()) {
      unmet.push_back(property + " (needs " + std::string(*missing) + ")");
      continue;
    }
    written.push_back(property + std::string(f.value));
    out.cpu_features.push_back(written.back());
  }
  std::vector<std::string> notes;
  if (accel == Accel::kTcg) {
    notes.push_back("TCG: Hyper-V enlightenments need KVM; not written: " + JoinComma(absent));
  } else if (!absent.empty()) {
    notes.push_back("this QEMU has no " + JoinComma(absent) + ": not written");
  }
  if (!host_lacks.empty()) notes.push_back(HostGapsNote(host_lacks, host_gaps));
  if (!unmet.empty()) notes.push_back("not written, a requirement is off: " + JoinComma(unmet));
  for (const std::string& note : notes) hv.note += (hv.note.empty() ? "" : "; ") + note;
  if (!written.empty()) {
    hv.rendered = "-cpu ...," + JoinComma(written);
  } else if (accel == Accel::kKvm) {
    hv.satisfiable = false;
  }
  out.settings.push_back(std::move(hv));
}

void RenderKvmclock(const ClockPolicy& policy, const QemuCapabilities& caps, Accel accel,
                    ClockRendering& out) {
  RenderedSetting clock = Begin(ClockSetting::kKvmclock, policy);
  if (accel == Accel::kTcg) {
    clock.note = "TCG: kvm-clock needs KVM";
  } else if (policy.kvmclock.value == Toggle::kOn) {
    LeaveDefault(clock);  // on for every CPU model under KVM
  } else if (!caps.kvmclock) {
    clock.satisfiable = false;
    clock.note = "this QEMU has no kvmclock CPU property";
  } else {
    out.cpu_features.emplace_back("kvmclock=off");
    clock.rendered = "-cpu ...,kvmclock=off";
  }
  out.settings.push_back(std::move(clock));
}

}  // namespace

ClockRendering RenderClock(const ClockPolicy& policy, const QemuCapabilities& caps, Accel accel,
                           const HypervGaps& host_gaps) {
  ClockRendering out;
  out.accel = accel;
  RenderRtc(policy, caps, out);
  RenderPit(policy, caps, accel, out);
  RenderHpet(policy, caps, out);
  RenderHvTime(policy, caps, accel, host_gaps, out);
  RenderHyperv(policy, caps, accel, host_gaps, out);
  RenderKvmclock(policy, caps, accel, out);
  return out;
}

std::vector<std::string> ClockRendering::Notes() const {
  std::vector<std::string> notes;
  for (const RenderedSetting& s : settings) {
    if (!s.note.empty()) notes.push_back(std::string(ToString(s.setting)) + ": " + s.note);
  }
  return notes;
}

const RenderedSetting& ClockRendering::Setting(ClockSetting setting) const {
  // RenderClock renders every setting, in enum order.
  return settings.at(static_cast<std::size_t>(setting));
}

std::string_view DefaultCpuModel(Accel accel) {
  switch (accel) {
    case Accel::kKvm:
      return "host";
    case Accel::kTcg:
      return "max";
  }
  return "max";
}

std::vector<std::string> CpuArgv(std::string_view model, const std::vector<std::string>& features) {
  std::string cpu(model);
  for (const std::string& feature : features) cpu += "," + feature;
  return {"-cpu", cpu};
}

std::vector<std::string> ClockArgv(const ClockRendering& rendering, std::string_view cpu_model) {
  std::vector<std::string> argv = rendering.argv;
  if (!rendering.cpu_features.empty()) {
    const auto cpu = CpuArgv(cpu_model, rendering.cpu_features);
    argv.insert(argv.end(), cpu.begin(), cpu.end());
  }
  return argv;
}

namespace {

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    parts.push_back(
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return parts;
    start = comma + 1;
  }
}

constexpr std::string_view kPitGlobal = "kvm-pit.lost_tick_policy=";

bool IsClockCpuFeature(const std::string& part) {
  return part.rfind("hv-", 0) == 0 || part.rfind("kvmclock", 0) == 0;
}

}  // namespace

ClockMeaning ClockMeaningOf(const std::vector<std::string>& argv) {
  ClockMeaning m;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    const std::string next = i + 1 < argv.size() ? argv[i + 1] : "";
    if (arg == "-no-hpet") m.hpet = false;
    if (arg == "-no-kvm-pit-reinjection") m.pit = "discard";
    if (arg == "-rtc") {
      for (const std::string& part : SplitCommas(next)) {
        const auto eq = part.find('=');
        if (eq == std::string::npos) continue;
        const std::string key = part.substr(0, eq), value = part.substr(eq + 1);
        if (key == "base") m.rtc_base = value;
        if (key == "clock") m.rtc_clock = value;
        if (key == "driftfix") m.rtc_driftfix = value;
      }
    }
    if (arg == "-global" && next.rfind(kPitGlobal, 0) == 0) m.pit = next.substr(kPitGlobal.size());
    if (arg == "-machine") {
      for (const std::string& part : SplitCommas(next)) {
        if (part == "hpet=off") m.hpet = false;
        if (part == "hpet=on") m.hpet = true;
      }
    }
    if (arg == "-cpu") {
      m.hyperv.clear();
      m.kvmclock = true;
      for (const std::string& part : SplitCommas(next)) {
        if (part == "kvmclock=off") m.kvmclock = false;
        if (part == "kvmclock=on" || part == "kvmclock") m.kvmclock = true;
        if (part.rfind("hv-", 0) != 0) continue;
        if (part.size() > 3 && part.substr(part.size() - 3) == "=on") {
          m.hyperv.insert(part.substr(0, part.size() - 3));
        } else if (part.find("=off") == std::string::npos) {
          m.hyperv.insert(part);
        }
      }
    }
  }
  return m;
}

std::string ToString(const ClockMeaning& m) {
  std::string text = "rtc base=" + m.rtc_base + " clock=" + m.rtc_clock +
                     " driftfix=" + m.rtc_driftfix + ", pit " + m.pit + ", hpet " +
                     (m.hpet ? "on" : "off") + ", kvmclock " + (m.kvmclock ? "on" : "off") +
                     ", hyperv {";
  for (const std::string& f : m.hyperv) text += " " + f;
  return text + " }";
}

std::vector<std::string> WithoutClockOptions(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    const std::string next = i + 1 < argv.size() ? argv[i + 1] : "";
    if (arg == "-no-hpet" || arg == "-no-kvm-pit-reinjection") continue;
    if (arg == "-rtc" || (arg == "-global" && next.rfind(kPitGlobal, 0) == 0) ||
        (arg == "-machine" && (next == "hpet=off" || next == "hpet=on"))) {
      ++i;
      continue;
    }
    out.push_back(arg);
    if (arg == "-cpu" && i + 1 < argv.size()) {
      std::vector<std::string> kept;
      for (const std::string& part : SplitCommas(next)) {
        if (!IsClockCpuFeature(part)) kept.push_back(part);
      }
      out.push_back(JoinComma(kept));
      ++i;
    }
  }
  return out;
}

}  // namespace kvmrun

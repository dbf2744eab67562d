#include "kvmrun/clock_rendering.h"

#include <string>

namespace kvmrun {
namespace {

// The Hyper-V clock needs the enlightenments that make it usable; this is the set QEMU's
// hyperv.rst and libvirt's hypervclock use.
constexpr const char* kHypervClockFeatures[] = {"hv-relaxed", "hv-vapic", "hv-spinlocks=0x1fff",
                                                "hv-time"};

RenderedSetting Begin(ClockSetting setting, const ClockPolicy& policy) {
  RenderedSetting r;
  r.setting = setting;
  r.value = std::string(SettingValue(policy, setting));
  return r;
}

void RenderRtc(const ClockPolicy& policy, const QemuCapabilities& caps, ClockRendering& out) {
  RenderedSetting base = Begin(ClockSetting::kRtcBase, policy);
  RenderedSetting drift = Begin(ClockSetting::kRtcPolicy, policy);
  std::string rtc = "base=" + base.value;
  base.rendered = "-rtc " + rtc;
  if (caps.rtc_driftfix) {
    // -rtc driftfix maps onto mc146818rtc.lost_tick_policy: none = discard, slew = slew.
    const std::string driftfix =
        policy.rtc_policy.value == RtcTickPolicy::kSlew ? "driftfix=slew" : "driftfix=none";
    rtc += "," + driftfix;
    drift.rendered = "-rtc " + driftfix;
  } else if (policy.rtc_policy.value == RtcTickPolicy::kSlew) {
    drift.satisfiable = false;
    drift.note = "this QEMU has no -rtc driftfix: RTC interrupts cannot be slewed";
  } else {
    drift.note = "this QEMU has no -rtc driftfix; discard is its only behaviour";
  }
  out.argv.insert(out.argv.end(), {"-rtc", rtc});
  out.settings.push_back(std::move(base));
  out.settings.push_back(std::move(drift));
}

void RenderPit(const ClockPolicy& policy, const QemuCapabilities& caps, Accel accel,
               ClockRendering& out) {
  RenderedSetting pit = Begin(ClockSetting::kPitPolicy, policy);
  const bool discard = policy.pit_policy.value == PitTickPolicy::kDiscard;
  switch (accel) {
    case Accel::kTcg:
      // A -global for kvm-pit would be accepted and silently ignored: say so instead.
      pit.note = "TCG: the PIT is QEMU's isa-pit, which has no lost-tick policy";
      break;
    case Accel::kKvm:
      if (discard && caps.no_kvm_pit_reinjection_flag) {
        pit.rendered = "-no-kvm-pit-reinjection";
        pit.note = "the pre-3.0 spelling of kvm-pit.lost_tick_policy=discard";
        out.argv.push_back(pit.rendered);
      } else if (caps.kvm_pit_lost_tick_policy) {
        const std::string global = "kvm-pit.lost_tick_policy=" + pit.value;
        pit.rendered = "-global " + global;
        out.argv.insert(out.argv.end(), {"-global", global});
      } else if (discard) {
        pit.satisfiable = false;
        pit.note = "this QEMU cannot turn off PIT re-injection";
      } else {
        pit.note = "re-injection (delay) is the in-kernel PIT's only behaviour on this QEMU";
      }
      break;
  }
  out.settings.push_back(std::move(pit));
}

void RenderHpet(const ClockPolicy& policy, const QemuCapabilities& caps, ClockRendering& out) {
  RenderedSetting hpet = Begin(ClockSetting::kHpet, policy);
  const bool off = policy.hpet.value == Toggle::kOff;
  if (caps.machine_hpet_property) {
    const std::string machine = "hpet=" + hpet.value;
    hpet.rendered = "-machine " + machine;
    out.argv.insert(out.argv.end(), {"-machine", machine});
  } else if (off && caps.no_hpet_flag) {
    hpet.rendered = "-no-hpet";
    hpet.note = "the pre-5.2 spelling of -machine hpet=off";
    out.argv.push_back(hpet.rendered);
  } else if (off) {
    hpet.satisfiable = false;
    hpet.note = "this QEMU has neither -machine hpet= nor -no-hpet";
  } else {
    hpet.note = "the HPET is on by default and this QEMU has no -machine hpet=";
  }
  out.settings.push_back(std::move(hpet));
}

void RenderHvTime(const ClockPolicy& policy, const QemuCapabilities& caps, Accel accel,
                  ClockRendering& out) {
  RenderedSetting hv = Begin(ClockSetting::kHvTime, policy);
  if (policy.hv_time.value == Toggle::kOn) {
    if (accel == Accel::kTcg) {
      hv.note = "TCG: Hyper-V enlightenments need KVM";
    } else if (!caps.hv_time) {
      hv.satisfiable = false;
      hv.note = "this QEMU has no hv-time CPU property";
    } else {
      std::string joined;
      for (const char* feature : kHypervClockFeatures) {
        out.cpu_features.emplace_back(feature);
        joined += joined.empty() ? "" : ",";
        joined += feature;
      }
      hv.rendered = "-cpu ...," + joined;
    }
  }
  out.settings.push_back(std::move(hv));
}

void RenderKvmclock(const ClockPolicy& policy, const QemuCapabilities& caps, Accel accel,
                    ClockRendering& out) {
  RenderedSetting clock = Begin(ClockSetting::kKvmclock, policy);
  if (accel == Accel::kTcg) {
    clock.note = "TCG: kvm-clock needs KVM";
  } else if (policy.kvmclock.value == Toggle::kOn) {
    clock.note = "on by default for every CPU model under KVM";
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

ClockRendering RenderClock(const ClockPolicy& policy, const QemuCapabilities& caps, Accel accel) {
  ClockRendering out;
  out.accel = accel;
  RenderRtc(policy, caps, out);
  RenderPit(policy, caps, accel, out);
  RenderHpet(policy, caps, out);
  RenderHvTime(policy, caps, accel, out);
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

}  // namespace kvmrun

// timecheck's wall-clock mode (timecheck.h): the guest's own clock around each stall.
#include <cmath>
#include <thread>

#include "kvmrun/guest_clock.h"
#include "kvmrun/guest_os.h"
#include "kvmrun/timecheck.h"
#include "policy/names.h"
#include "policy/text_table.h"
#include "timecheck/timecheck_internal.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
using namespace timecheck_internal;
using Clock = std::chrono::steady_clock;

constexpr double kCaughtUpS = 0.1;

double OffsetSeconds(const GuestOffset& offset) { return offset.offset_ns / 1e9; }

}  // namespace

WallClockRun RunWallClockCheck(const std::string& label, GuestOs policy_os,
                               ClockOverrides overrides, const TimecheckOptions& o) {
  ValidateTimecheckOptions(o);
  WallClockRun run;
  run.label = label;
  VmSpec spec = o.base;
  spec.os = policy_os;
  spec.clock_overrides = overrides;
  spec.name = "kvmrun-timecheck-" + label;
  spec.agent = true;
  const auto progress = [&](const std::string& line) {
    if (o.on_progress) o.on_progress(label + ": " + line);
  };
  std::unique_ptr<Vm> vm = Vm::Start(spec, o.vm);
  run.policy = vm->policy();
  run.accel = vm->accel().accel;
  vm->Continue();
  progress("booting the guest (" + std::string(ToString(run.accel)) + "), waiting for its agent");
  const auto agent = vm->ConnectAgent(run.accel == Accel::kTcg ? 300s : 120s);
  const bool linux_guest = Describe(run.policy.os).family == GuestFamily::kLinux;
  if (linux_guest) {
    try {
      run.clocksource = ReadGuestClocksource(*agent).current;
    } catch (const GuestAgentError&) {
      run.clocksource = "?";
    }
  }
  const auto measure = [&] {
    const GuestOffset offset = MeasureGuestOffset(*agent, 3);
    run.worst_uncertainty_s = std::max(run.worst_uncertainty_s, offset.uncertainty_ns / 1e9);
    return OffsetSeconds(offset);
  };
  run.start_offset_s = measure();
  progress("offset " + Fixed(run.start_offset_s, 3) + " s; " + StallDescription(o) + " over " +
           std::to_string(o.duration_s) + " s");

  // Stalls evenly spread over the run, each followed by a watch until the next one.
  const int stalls = o.stall == StallKind::kNone ? 0 : o.stalls;
  const auto slot =
      std::chrono::duration<double>(static_cast<double>(o.duration_s) / std::max(stalls, 1));
  const auto quarter = std::chrono::duration_cast<Clock::duration>(slot / 4);
  for (int i = 0; i < stalls; ++i) {
    std::this_thread::sleep_for(quarter);  // the guest runs a while before each stall
    WallClockStall record;
    record.before_s = measure();
    progress("stall " + std::to_string(i + 1) + "/" + std::to_string(stalls) + " (" +
             std::string(ToString(o.stall)) + ", " + Fixed(o.stall_seconds, 1) + " s)");
    Stall(*vm, o);
    const auto ended = Clock::now();
    record.after_s = record.last_s = measure();
    const auto watch_until = ended + std::chrono::duration_cast<Clock::duration>(slot * 3 / 4);
    while (Clock::now() < watch_until) {
      if (std::abs(record.last_s - record.before_s) <= kCaughtUpS) {
        record.catch_up_s = std::chrono::duration<double>(Clock::now() - ended).count();
        break;
      }
      std::this_thread::sleep_for(250ms);
      record.last_s = measure();
    }
    run.stalls.push_back(record);
  }
  if (stalls == 0) std::this_thread::sleep_for(std::chrono::seconds(o.duration_s));
  run.end_offset_s = measure();
  vm->Shutdown(1s);
  return run;
}

std::string FormatWallClockTable(const std::vector<WallClockRun>& runs, const TimecheckOptions& o) {
  std::vector<TextRow> rows = {{""},
                               {"policy"},
                               {"guest clocksource"},
                               {"offset at start"},
                               {"offset before -> after each stall"},
                               {"caught up after"},
                               {"offset at end"},
                               {"accelerator"}};
  for (const WallClockRun& run : runs) {
    std::string around, catch_up;
    for (const WallClockStall& s : run.stalls) {
      around += (around.empty() ? "" : ", ") + Fixed(s.before_s, 2) + " -> " + Fixed(s.after_s, 2);
      catch_up += (catch_up.empty() ? "" : ", ") +
                  (s.catch_up_s ? Fixed(*s.catch_up_s, 1) + " s" : std::string("never"));
    }
    rows[0].push_back(run.label);
    rows[1].push_back(PolicyDescription(run.policy));
    rows[2].push_back(run.clocksource.empty() ? "-" : run.clocksource);
    rows[3].push_back(Fixed(run.start_offset_s, 3) + " s");
    rows[4].push_back(around.empty() ? "-" : around + " s");
    rows[5].push_back(catch_up.empty() ? "-" : catch_up);
    rows[6].push_back(Fixed(run.end_offset_s, 3) + " s");
    rows[7].push_back(std::string(ToString(run.accel)));
  }
  double worst = 0;
  for (const WallClockRun& run : runs) worst = std::max(worst, run.worst_uncertainty_s);
  return "timecheck: the guest's wall clock minus the host's (guest agent), " +
         StallDescription(o) + " over " + std::to_string(o.duration_s) + " s; readings +- " +
         Fixed(worst * 1000, 2) + " ms or better\n\n" + FormatTable(rows);
}

nlohmann::json WallClockToJson(const std::vector<WallClockRun>& runs, const TimecheckOptions& o) {
  nlohmann::json out = {
      {"mode", "wall"},
      {"duration_s", o.duration_s},
      {"stall", {{"kind", ToString(o.stall)}, {"count", o.stalls}, {"seconds", o.stall_seconds}}},
      {"runs", nlohmann::json::array()}};
  for (const WallClockRun& run : runs) {
    nlohmann::json stalls = nlohmann::json::array();
    for (const WallClockStall& s : run.stalls) {
      stalls.push_back({{"before_s", s.before_s},
                        {"after_s", s.after_s},
                        {"catch_up_s", s.catch_up_s ? nlohmann::json(*s.catch_up_s) : nullptr},
                        {"last_s", s.last_s}});
    }
    out["runs"].push_back({{"label", run.label},
                           {"os", ToString(run.policy.os)},
                           {"rtc_policy", ToString(run.policy.rtc_policy.value)},
                           {"pit_policy", ToString(run.policy.pit_policy.value)},
                           {"accel", ToString(run.accel)},
                           {"clocksource", run.clocksource},
                           {"start_offset_s", run.start_offset_s},
                           {"end_offset_s", run.end_offset_s},
                           {"worst_uncertainty_s", run.worst_uncertainty_s},
                           {"stalls", stalls}});
  }
  return out;
}

}  // namespace kvmrun

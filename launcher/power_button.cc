#include "launcher/power_button.h"

#include <string_view>
#include <thread>

#include "qmp/json_fields.h"

namespace kvmrun {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// query-migrate's states of an outgoing migration that has not ended.
bool MigrationActive(std::string_view status) {
  return status == "setup" || status == "active" || status == "pre-switchover" ||
         status == "device" || status == "wait-unplug" || status == "cancelling";
}

std::string RunState(QmpClient& qmp, std::chrono::milliseconds step) {
  const nlohmann::json reply = qmp.Execute("query-status", nullptr, step);
  return JsonFields(reply, "query-status's reply").StringOr("status", "");
}

std::string MigrationState(QmpClient& qmp, std::chrono::milliseconds step) {
  const nlohmann::json reply = qmp.Execute("query-migrate", nullptr, step);
  return JsonFields(reply, "query-migrate's reply").StringOr("status", "");
}

}  // namespace

PowerButtonReadiness ReadyForPowerButton(QmpClient& qmp, std::chrono::milliseconds step) {
  PowerButtonReadiness ready;
  std::string state = RunState(qmp, step);
  if (state == "running") return ready;
  if (state == "prelaunch" || state == "inmigrate") {
    ready.can_hear = false;
    ready.note = "the guest had not started (" + state + "): nothing to power off";
    return ready;
  }
  bool cancelled = false;
  if (MigrationActive(MigrationState(qmp, step))) {
    // A save's migration holds the VM paused until it ends; cancelled, the VM stays paused and
    // the saver sees "cancelled" and removes its unfinished file.
    qmp.Execute("migrate_cancel", nullptr, step);
    const auto deadline = Clock::now() + step;
    while (MigrationActive(MigrationState(qmp, step)) && Clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    cancelled = true;
    state = RunState(qmp, step);
  }
  // What was done, then what follows from the state it left.
  const auto said = [&](std::string_view then) {
    std::string note = cancelled ? "a snapshot save in progress was cancelled" : "";
    if (!note.empty() && !then.empty()) note += "; ";
    return note.append(then);
  };
  // "paused": by a save (its "stop") or over QMP; "postmigrate": a save that had just finished.
  // Any other state is QEMU's own (a disk error, a guest panic, a watchdog): left as it is.
  if (state == "paused" || state == "postmigrate") {
    qmp.Execute("cont", nullptr, step);
    ready.note = said("the paused guest was resumed to hear the power button");
  } else if (state == "running") {  // a saver that saw its cancel resumed it first
    ready.note = said("");
  } else {
    ready.can_hear = false;
    ready.note = said("QEMU had stopped the VM (" + state + "): the power button cannot reach it");
  }
  return ready;
}

}  // namespace kvmrun

// Whether a guest can hear the power button, and making it so where that is safe. The first
// step of the shutdown ladder (system_powerdown) only reaches a guest whose vCPUs run: a VM a
// snapshot save holds paused, or one paused over QMP, would let the whole grace run out and
// then be killed, a forced stop where a clean one was possible.
#ifndef KVMRUN_LAUNCHER_POWER_BUTTON_H_
#define KVMRUN_LAUNCHER_POWER_BUTTON_H_

#include <chrono>
#include <string>

#include "kvmrun/qmp_client.h"

namespace kvmrun {

struct PowerButtonReadiness {
  // The guest can act on the power button now (it runs, or was resumed for it). False for a VM
  // that has not started (prelaunch, an incoming restore) or that QEMU stopped on an error (a
  // disk error, a guest panic): nothing in it is lost by quitting QEMU, or it cannot act.
  bool can_hear = true;
  // What was done first, or why the button is skipped ("" when it simply runs), e.g.
  // "a snapshot save in progress was cancelled; the paused guest was resumed to hear the power
  // button".
  std::string note;
};

// Asks QEMU's run state and, for a paused VM, its migration state: an outgoing migration (a
// snapshot save) is cancelled, and a VM paused by a save or over QMP is resumed. Each command
// waits at most `step`. Throws what QmpClient throws (QEMU gone or not answering).
PowerButtonReadiness ReadyForPowerButton(QmpClient& qmp, std::chrono::milliseconds step);

}  // namespace kvmrun

#endif  // KVMRUN_LAUNCHER_POWER_BUTTON_H_

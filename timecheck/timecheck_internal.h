// What the two timecheck modes (ticks: timecheck.cc, wall clock: wall_clock_check.cc) share.
#ifndef KVMRUN_TIMECHECK_TIMECHECK_INTERNAL_H_
#define KVMRUN_TIMECHECK_TIMECHECK_INTERNAL_H_

#include <string>

#include "kvmrun/timecheck.h"

namespace kvmrun::timecheck_internal {

// Keeps every core busy for `seconds`: the host CPU starvation a VM meets on a busy host.
void Starve(double seconds);
// One stall of the kind and length in `o`.
void Stall(Vm& vm, const TimecheckOptions& o);
std::string Fixed(double value, int digits);
// "3 x 3.0 s SIGSTOP/SIGCONT of QEMU"
std::string StallDescription(const TimecheckOptions& o);
// "rtc slew, pit delay"
std::string PolicyDescription(const ClockPolicy& p);

}  // namespace kvmrun::timecheck_internal

#endif  // KVMRUN_TIMECHECK_TIMECHECK_INTERNAL_H_

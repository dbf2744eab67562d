// How long building and rendering a clock policy takes (target: under 50 us per render).
#include <benchmark/benchmark.h>

#include "kvmrun/clock_rendering.h"
#include "kvmrun/policy_format.h"

namespace kvmrun {
namespace {

// One iteration renders every catalog OS once: policy, rendering and the full argv.
void BM_RenderEveryOs(benchmark::State& state) {
  const QemuCapabilities caps = ShippedCapabilitiesFor("7.2");
  const Accel accel = state.range(0) == 0 ? Accel::kKvm : Accel::kTcg;
  for (auto _ : state) {
    for (const GuestOsInfo& info : GuestOsCatalog()) {
      const ClockRendering r = RenderClock(MakeClockPolicy(info.os), caps, accel);
      benchmark::DoNotOptimize(ClockArgv(r, DefaultCpuModel(accel)));
    }
  }
  state.SetItemsProcessed(state.iterations() * GuestOsCatalog().size());
  state.SetLabel(std::string(ToString(accel)) + ", items = renders");
}
BENCHMARK(BM_RenderEveryOs)->Arg(0)->Arg(1);

void BM_PolicyJson(benchmark::State& state) {
  const ClockPolicy policy = MakeClockPolicy(GuestOs::kWindows11);
  for (auto _ : state) benchmark::DoNotOptimize(ClockPolicyToJson(policy).dump());
}
BENCHMARK(BM_PolicyJson);

}  // namespace
}  // namespace kvmrun

BENCHMARK_MAIN();

// QMP codec throughput on a realistic stream: the replies and events kvmrun reads while
// verifying a VM (greeting, qom-list of /machine, qom-get, query-cpus-fast, events).
#include <benchmark/benchmark.h>

#include <string>

#include "kvmrun/qmp_codec.h"

namespace kvmrun {
namespace {

std::string RealisticStream() {
  std::string one_round =
      R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}})"
      "\r\n";
  std::string qom_list = R"({"return": [)";
  for (int i = 0; i < 40; ++i) {
    qom_list += (i ? ", " : "") + std::string(R"({"name": "device[)") + std::to_string(i) +
                R"(]", "type": "child<isa-serial>"})";
  }
  qom_list += R"(], "id": 2})"
              "\r\n";
  one_round += qom_list;
  one_round += R"({"return": "/machine/unattached/device[8]", "id": 3})"
               "\r\n";
  one_round += R"({"return": "slew", "id": 4})"
               "\r\n";
  one_round +=
      R"({"return": [{"thread-id": 4542, "props": {"core-id": 0, "thread-id": 0, "socket-id": 0}, "qom-path": "/machine/unattached/device[0]", "cpu-index": 0, "target": "x86_64"}], "id": 5})"
      "\r\n";
  one_round +=
      R"({"timestamp": {"seconds": 1795754330, "microseconds": 385433}, "event": "RESUME"})"
      "\r\n";
  std::string stream;
  while (stream.size() < (4u << 20)) stream += one_round;
  return stream;
}

void BM_DecodeStream(benchmark::State& state) {
  const std::string stream = RealisticStream();
  const std::size_t chunk = static_cast<std::size_t>(state.range(0));
  std::size_t messages = 0;
  for (auto _ : state) {
    QmpDecoder decoder;
    for (std::size_t i = 0; i < stream.size(); i += chunk) {
      decoder.Feed(std::string_view(stream).substr(i, chunk));
      while (auto m = decoder.Next()) {
        benchmark::DoNotOptimize(m->kind);
        ++messages;
      }
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
  state.counters["messages"] =
      benchmark::Counter(static_cast<double>(messages), benchmark::Counter::kIsRate);
}
// Reads of 64 KiB (what the client uses) and of 512 bytes (a slow trickle).
BENCHMARK(BM_DecodeStream)->Arg(65536)->Arg(512)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kvmrun

BENCHMARK_MAIN();

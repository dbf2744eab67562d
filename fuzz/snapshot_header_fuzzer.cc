// libFuzzer target for a snapshot file's header: any bytes parse to a header or fail with
// UsageError, never crash or throw anything else. The header is read before anything checks
// the file, so it is the first thing a hostile snapshot reaches.
#include <cstddef>
#include <cstdint>
#include <string>

#include "kvmrun/error.h"
#include "kvmrun/qmp_codec.h"
#include "kvmrun/snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The magic line is given, so that the fuzzer spends its time on the JSON after it.
  std::string text = "KVMRUN-SNAPSHOT\n";
  text.append(reinterpret_cast<const char*>(data), size);
  text.resize(std::max<std::size_t>(text.size(), kvmrun::kSnapshotHeaderBytes), ' ');
  try {
    const kvmrun::SnapshotHeader header = kvmrun::ParseSnapshotHeader(text, "fuzz");
    (void)kvmrun::DumpJson(kvmrun::SnapshotHeaderToJson(header));
  } catch (const kvmrun::UsageError&) {
  }
  return 0;
}

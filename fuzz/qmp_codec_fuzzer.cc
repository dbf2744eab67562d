// libFuzzer target for the QMP decoder: any byte stream, cut at fuzzer-chosen read boundaries,
// must yield messages or a QmpProtocolError, never a crash, a hang or unbounded memory.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kvmrun/qmp_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks the read size, so split messages are explored too.
  const std::size_t chunk = 1 + data[0] % 64;
  std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  kvmrun::QmpDecoder decoder(4096);
  try {
    for (std::size_t i = 0; i < stream.size(); i += chunk) {
      decoder.Feed(stream.substr(i, chunk));
      while (auto message = decoder.Next()) {
        (void)message->id();
      }
    }
    (void)decoder.HasPartialMessage();
  } catch (const kvmrun::QmpProtocolError&) {
    // Malformed input is expected; anything else escaping is a bug.
  }
  return 0;
}

// libFuzzer target for what a guest agent says: the fuzz input is the agent's side of the port,
// fed to a GuestAgent that syncs, runs a command, reads the time, the OS and a file. Every
// reply shape must end in a kvmrun::Error (MalformedJson, GuestAgentError, a protocol error, a
// disconnect when the bytes run out), never a crash, an abort or unbounded memory.
// "@ID@" in the input is replaced by the id of the command being answered, so that the fuzzer
// reaches the readers of replies and not only the dropping of stale ones.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "kvmrun/guest_agent.h"
#include "kvmrun/qmp_codec.h"

namespace {

class FuzzTransport : public kvmrun::QmpTransport {
 public:
  explicit FuzzTransport(std::string_view replies) : replies_(replies) {}

  void Write(std::string_view bytes, kvmrun::Deadline) override {
    const std::size_t id = bytes.find("\"id\":");
    last_id_.clear();
    if (id != std::string_view::npos) {
      for (std::size_t i = id + 5;
           i < bytes.size() &&
           (bytes[i] == ' ' || std::isdigit(static_cast<unsigned char>(bytes[i])));
           ++i) {
        if (bytes[i] != ' ') last_id_ += bytes[i];
      }
    }
    if (bytes.find("guest-sync-delimited") != std::string_view::npos) {
      pending_ = "\xff{\"return\": " + last_id_ + "}\n";
    }
  }

  std::size_t Read(char* buffer, std::size_t size, kvmrun::Deadline) override {
    if (pending_.empty()) {
      if (replies_.empty()) return 0;  // the port closes: QmpDisconnected
      const std::size_t end = std::min<std::size_t>(replies_.find('\n') + 1, replies_.size());
      pending_ = std::string(replies_.substr(0, end == 0 ? replies_.size() : end));
      replies_.remove_prefix(pending_.size());
      for (std::size_t at; (at = pending_.find("@ID@")) != std::string::npos;) {
        pending_.replace(at, 4, last_id_);
      }
    }
    const std::size_t n = std::min(size, pending_.size());
    pending_.copy(buffer, n);
    pending_.erase(0, n);
    return n;
  }

  void Shutdown() override {}

 private:
  std::string_view replies_;
  std::string pending_;
  std::string last_id_;
};

template <typename Call>
void Try(Call call) {
  try {
    call();
  } catch (const kvmrun::Error&) {
    // Expected: a hostile agent gets an error, nothing else.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view replies(reinterpret_cast<const char*>(data), size);
  kvmrun::GuestAgent agent(std::make_unique<FuzzTransport>(replies));
  using namespace std::chrono_literals;
  Try([&] { agent.Sync(1s); });
  Try([&] {
    kvmrun::GuestExecRequest request;
    request.argv = {"/bin/true"};
    request.timeout = 50ms;
    (void)agent.Exec(request);
  });
  Try([&] { (void)agent.GetTime(); });
  Try([&] { (void)agent.OsInfo(); });
  Try([&] { (void)agent.ReadFile("/sys/x", 1 << 16, 1s); });
  nlohmann::json status;
  try {
    status = kvmrun::ParseBoundedJson(replies);
  } catch (const std::exception&) {
    return 0;  // not JSON: the decoder's business, fuzzed above
  }
  Try([&] { (void)kvmrun::ExecResultFromStatus(status); });
  return 0;
}

// A misbehaving QMP server on a Unix socket, for fault tests of everything that connects to a
// "QEMU": garbage, truncated messages, huge messages, silence.
#ifndef KVMRUN_TESTS_SUPPORT_FAKE_QMP_SERVER_H_
#define KVMRUN_TESTS_SUPPORT_FAKE_QMP_SERVER_H_

#include <atomic>
#include <string>
#include <thread>

namespace kvmrun::testing {

enum class FakeServerBehaviour {
  kGarbage,           // greets, then answers the first command with bytes that are not JSON
  kPartialThenClose,  // greets, then sends half a reply and closes
  kHugeReply,         // greets, then answers every command with a 10 MiB return value
  kNoGreeting,        // accepts and says nothing
  kNeverAnswers,      // greets, answers qmp_capabilities, then ignores every command
  kNestedGreeting,    // greets with a value nested 100000 levels deep
  kNestedReply,       // greets, then answers every command with a value nested 100000 deep
  kIdlessError,       // greets, then answers every command with an error that has no id
};

class FakeQmpServer {
 public:
  // Listens on `path` and serves each connection, one at a time, until destroyed.
  FakeQmpServer(std::string path, FakeServerBehaviour behaviour);
  ~FakeQmpServer();
  FakeQmpServer(const FakeQmpServer&) = delete;
  FakeQmpServer& operator=(const FakeQmpServer&) = delete;

  const std::string& path() const { return path_; }

 private:
  void Serve(int client);

  std::string path_;
  FakeServerBehaviour behaviour_;
  int listener_ = -1;
  int stop_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace kvmrun::testing

#endif  // KVMRUN_TESTS_SUPPORT_FAKE_QMP_SERVER_H_

// A ProcessRunner whose "QEMU" is a thread in the test: it answers QMP on the socket the
// launcher hands over (found in the argv, as real QEMU finds it), writes to the console
// socket, and exits or ignores signals as the test says. Lets the lifecycle (start, continue,
// shutdown ladder, crashes) be tested exactly and fast.
#ifndef KVMRUN_TESTS_SUPPORT_FAKE_QEMU_H_
#define KVMRUN_TESTS_SUPPORT_FAKE_QEMU_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kvmrun/process.h"
#include "kvmrun/vm.h"

namespace kvmrun::testing {

struct FakeQemuBehaviour {
  bool powerdown_works = true;       // system_powerdown makes the guest power off (exit 0)
  bool quit_works = true;            // quit exits 0
  bool sigterm_works = true;         // SIGTERM exits (killed by SIGTERM)
  bool greet = true;                 // send the QMP greeting
  std::optional<int> exit_at_start;  // exit at once with this code, after writing `stderr`
  std::string stderr_text;
  std::string console_text;  // written to the console on "cont"
  // When set, a fake qemu-ga listens on the VM's agent socket (sync, ping, guest-get-time),
  // its clock this many seconds from the host's.
  std::optional<double> agent_offset_s;
};

class FakeQemuRunner : public ProcessRunner {
 public:
  explicit FakeQemuRunner(FakeQemuBehaviour behaviour) : behaviour_(std::move(behaviour)) {}
  ~FakeQemuRunner() override;

  std::unique_ptr<Process> Spawn(const SpawnRequest& request) override;

  // Every QMP command the fake received, in order ("qmp_capabilities", "cont", ...).
  std::vector<std::string> commands() const;
  // The signals delivered to the fake, in order.
  std::vector<int> signals() const;
  const SpawnRequest& last_request() const { return request_; }

 private:
  struct State;
  FakeQemuBehaviour behaviour_;
  SpawnRequest request_;
  std::shared_ptr<State> state_;
  std::thread server_;
  std::thread agent_;
};

// VmOptions that start a Vm on `runner` without probing anything: QEMU 7.2's shipped
// capabilities, no KVM, short timeouts, runtime and cache directories under `dir`, notices
// appended to `notices`.
VmOptions FakeVmOptions(std::shared_ptr<FakeQemuRunner> runner, const std::string& dir,
                        std::vector<std::string>& notices);

}  // namespace kvmrun::testing

#endif  // KVMRUN_TESTS_SUPPORT_FAKE_QEMU_H_

// The guest agent in the busybox test guest (Debian's qemu-ga 7.2 in it), under TCG: commands,
// their status and output, stdin, timeouts, and a guest without an agent.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kvmrun/error.h"
#include "kvmrun/guest_agent.h"
#include "kvmrun/qmp_commands.h"
#include "kvmrun/vm.h"
#include "tests/support/qemu_binary.h"
#include "tests/support/qemu_process.h"
#include "tests/support/test_guest.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;

GuestExecRequest Command(std::vector<std::string> argv, std::chrono::milliseconds timeout = 60s) {
  GuestExecRequest request;
  request.argv = std::move(argv);
  request.timeout = timeout;
  return request;
}

class AgentTest : public ::testing::Test {
 protected:
  std::unique_ptr<Vm> Boot(const std::string& append) {
    qemu_ = testing::TestQemuBinary();
    if (qemu_.empty()) return nullptr;
    VmSpec spec;
    spec.qemu = qemu_;
    spec.accel = AccelRequest::kTcg;
    spec.memory_mib = 256;
    spec.kernel = testing::TestKernel();
    spec.initrd = testing::TestInitrd();
    spec.append = "console=ttyS0 quiet panic=-1 kvmrun.hold " + append;
    spec.shares = shares_;
    VmOptions options;
    options.runtime_base = dir_.path();
    options.cache_dir = dir_.path() + "/cache";
    auto vm = Vm::Start(spec, options);
    vm->Continue();
    return vm;
  }
  testing::TempDir dir_;
  std::string qemu_;
  std::vector<ShareSpec> shares_;
};

TEST_F(AgentTest, CommandsStatusOutputStdinAndTimeoutsOnTheBusyboxGuest) {
  auto vm = Boot("");
  if (!vm) GTEST_SKIP() << "qemu-system-x86_64 not installed";
  auto agent = vm->ConnectAgent(120s);  // waits while the guest boots

  EXPECT_EQ(agent->Exec(Command({"true"})).exit_code, 0);
  EXPECT_EQ(agent->Exec(Command({"false"})).exit_code, 1);
  EXPECT_EQ(agent->Exec(Command({"sh", "-c", "exit 7"})).exit_code, 7);

  const GuestExecResult split = agent->Exec(Command({"sh", "-c", "echo out; echo err >&2"}));
  EXPECT_EQ(split.out, "out\n");
  EXPECT_EQ(split.err, "err\n");

  // 1 MiB of output, intact.
  const GuestExecResult big =
      agent->Exec(Command({"sh", "-c", "yes 0123456789abcde | head -c 1048576"}));
  std::string expected;
  while (expected.size() < (1u << 20)) expected += "0123456789abcde\n";
  expected.resize(1u << 20);
  EXPECT_EQ(big.out.size(), expected.size());
  EXPECT_TRUE(big.out == expected);

  // Every byte value through stdin and back.
  std::string binary;
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 256; ++i) binary += static_cast<char>(i);
  }
  GuestExecRequest cat = Command({"cat"});
  cat.input = binary;
  EXPECT_TRUE(agent->Exec(cat).out == binary);

  try {
    agent->Exec(Command({"/no/such/program"}));
    ADD_FAILURE() << "a missing program ran";
  } catch (const GuestAgentError& e) {
    EXPECT_NE(e.description().find("No such file or directory"), std::string::npos) << e.what();
  }

  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(agent->Exec(Command({"sleep", "1000"}, 2s)), GuestExecTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
  EXPECT_EQ(agent->Exec(Command({"sh", "-c", "pgrep -x sleep || echo none"})).out, "none\n")
      << "the timed-out command was not killed";
  EXPECT_GT(agent->GetTime(), 0);
  EXPECT_EQ(agent->OsInfo().machine, "x86_64");
  agent.reset();

  // A second connection (the first is gone) syncs past whatever the first left behind.
  EXPECT_EQ(vm->Exec(Command({"echo", "again"})).out, "again\n");
  vm->Shutdown(0ms);
}

// A host directory with a comma and a space in its path, shared both ways, and a read-only
// share that refuses writes.
TEST_F(AgentTest, SharedFoldersBothWaysAndReadOnly) {
  const std::string odd = dir_.path() + "/code, under test";
  const std::string ro = dir_.path() + "/read-only";
  std::filesystem::create_directories(odd);
  std::filesystem::create_directories(ro);
  std::ofstream(odd + "/from-host.txt") << "written on the host\n";
  std::ofstream(ro + "/keep.txt") << "keep\n";
  shares_ = {{odd, "src", false}, {ro, "ro", true}};
  auto vm = Boot("");
  if (!vm) GTEST_SKIP() << "qemu-system-x86_64 not installed";
  auto agent = vm->ConnectAgent(120s);
  EXPECT_EQ(agent->Exec(Command({"cat", "/mnt/src/from-host.txt"})).out, "written on the host\n");
  EXPECT_EQ(
      agent->Exec(Command({"sh", "-c", "echo written in the guest > /mnt/src/from-guest.txt"}))
          .exit_code,
      0);
  std::ifstream back(odd + "/from-guest.txt");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(back), {}), "written in the guest\n");
  const GuestExecResult refused = agent->Exec(Command({"sh", "-c", "echo x > /mnt/ro/new.txt"}));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("Read-only file system"), std::string::npos) << refused.err;
  EXPECT_FALSE(std::filesystem::exists(ro + "/new.txt"));
  EXPECT_EQ(agent->Exec(Command({"cat", "/mnt/ro/keep.txt"})).out, "keep\n");
  agent.reset();
  vm->Shutdown(0ms);
}

TEST_F(AgentTest, AGuestWithoutAnAgentFailsWithinTheDeadlineAndTheVmIsFine) {
  auto vm = Boot("kvmrun.no-agent");
  if (!vm) GTEST_SKIP() << "qemu-system-x86_64 not installed";
  ASSERT_EQ(vm->WaitForConsole(ConsolePattern("KVMRUN-GUEST-HOLDING"), 120s).outcome,
            ConsoleMatch::Outcome::kMatched);
  const auto start = std::chrono::steady_clock::now();
  try {
    vm->ConnectAgent(3s);
    ADD_FAILURE() << "an agent answered";
  } catch (const GuestAgentUnavailable& e) {
    EXPECT_NE(std::string(e.what()).find("qemu-guest-agent"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_FALSE(vm->exit_status().has_value());
  EXPECT_EQ(QueryStatus(vm->qmp()).status, "running");
  vm->Shutdown(0ms);
}

}  // namespace
}  // namespace kvmrun

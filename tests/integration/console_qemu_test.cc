// The guest's serial console as input: a harness types a command on the test guest's shell
// (kvmrun.shell, ttyS0 its controlling terminal) and reads the answer, under TCG; the VM was
// started on a thread that has ended since.
#include <gtest/gtest.h>

#include <thread>

#include "kvmrun/error.h"
#include "kvmrun/vm.h"
#include "tests/support/qemu_binary.h"
#include "tests/support/qemu_process.h"
#include "tests/support/test_guest.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
using Outcome = ConsoleMatch::Outcome;

TEST(ConsoleInputTest, AHarnessSendsCommandsAndReadsTheAnswers) {
  const std::string qemu = testing::TestQemuBinary();
  if (qemu.empty()) GTEST_SKIP() << "qemu-system-x86_64 not installed";
  testing::TempDir dir;
  const VmSpec spec = testing::TestGuestSpec(qemu, "kvmrun.shell");
  VmOptions options;
  options.runtime_base = dir.path();
  options.cache_dir = dir.path() + "/cache";
  // Started on a thread that ends at once: the VM belongs to the process, not to that thread.
  std::unique_ptr<Vm> vm;
  std::thread([&] { vm = Vm::Start(spec, options); }).join();
  vm->Continue();
  // (busybox's line editing asks the terminal where its cursor is after the prompt: ESC[6n)
  ASSERT_EQ(vm->WaitForConsole(ConsolePattern("^guest# "), 120s).outcome, Outcome::kMatched)
      << vm->console().Tail();

  // The answer, not the echo of the command that asked for it.
  ConsoleMatch m = vm->SendConsole("echo $((6 * 7))\n", ConsolePattern("^\\d+$"), 60s);
  ASSERT_EQ(m.outcome, Outcome::kMatched) << vm->console().Tail();
  EXPECT_EQ(m.line, "42");

  ASSERT_EQ(vm->WaitForConsole(ConsolePattern("^guest# "), 60s).outcome, Outcome::kMatched);

  // Input the guest reads as a terminal's: a line read by a program, not by the shell.
  m = vm->SendConsole("read x; echo \"got <$x>\"\n", ConsolePattern("^guest# "), 2s);
  ASSERT_EQ(m.outcome, Outcome::kTimeout) << "read waits for its line: " << m.line;
  vm->WriteConsole("typed\n");
  m = vm->WaitForConsole(ConsolePattern("^got <.*>$"), 60s);
  ASSERT_EQ(m.outcome, Outcome::kMatched) << vm->console().Tail();
  EXPECT_EQ(m.line, "got <typed>");

  // The shell's exit powers the guest off; then the console takes nothing, and says why.
  vm->WriteConsole("exit\n");
  ASSERT_TRUE(vm->WaitForExit(120s)) << vm->console().Tail();
  EXPECT_EQ(vm->ShutdownReason(), "guest-shutdown");
  try {
    vm->WriteConsole("too late\n");
    ADD_FAILURE() << "a write to an exited VM's console succeeded";
  } catch (const VmError& e) {
    EXPECT_NE(std::string(e.what()).find("the VM has exited"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kvmrun

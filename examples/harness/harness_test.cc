// What a harness built on kvmrun looks like: boot a guest, assert on its console, shut down.
// Needs KVMRUN_TEST_GUEST_DIR (a vmlinuz and initramfs.cpio, as scripts/make-test-guest
// makes them).
#include <gtest/gtest.h>
#include <kvmrun/qmp_commands.h>
#include <kvmrun/vm.h>

#include <cstdlib>

namespace {

using namespace std::chrono_literals;

std::string GuestFile(const char* name) {
  const char* dir = std::getenv("KVMRUN_TEST_GUEST_DIR");
  return std::string(dir != nullptr ? dir : ".") + "/" + name;
}

TEST(HarnessExample, BootsTheGuestAndSeesItsMarker) {
  kvmrun::VmSpec spec;
  spec.os = kvmrun::GuestOs::kLinux;
  spec.kernel = GuestFile("vmlinuz");
  spec.initrd = GuestFile("initramfs.cpio");
  spec.append = "console=ttyS0 quiet panic=-1 kvmrun.hold";
  spec.no_reboot = true;

  std::unique_ptr<kvmrun::Vm> vm = kvmrun::Vm::Start(spec);  // paused; clocks verified
  ASSERT_TRUE(vm->clock_report().has_value());
  EXPECT_TRUE(vm->clock_report()->ok());
  vm->Continue();

  const kvmrun::ConsoleMatch ready =
      vm->WaitForConsole(kvmrun::ConsolePattern("KVMRUN-GUEST-READY"), 120s);
  ASSERT_EQ(ready.outcome, kvmrun::ConsoleMatch::Outcome::kMatched) << vm->console().Tail();
  const kvmrun::ConsoleMatch clock =
      vm->WaitForConsole(kvmrun::ConsolePattern("KVMRUN-GUEST-CLOCKSOURCE (\\S+)"), 30s);
  EXPECT_EQ(clock.outcome, kvmrun::ConsoleMatch::Outcome::kMatched);

  // The guest holds; the harness decides when it ends.
  EXPECT_EQ(kvmrun::QueryStatus(vm->qmp()).status, "running");
  const kvmrun::ShutdownResult stopped = vm->Shutdown(std::chrono::seconds(1));
  EXPECT_NE(stopped.step, kvmrun::ShutdownStep::kKill);
}

}  // namespace

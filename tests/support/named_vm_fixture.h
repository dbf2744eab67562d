// A fixture for tests that drive named VMs through the CLI: a private XDG_RUNTIME_DIR (so the
// registry is the test's own), the QEMU under test, and `kvmrun` runs with that environment.
// Skips when QEMU is absent; stops every VM it started (Detach) at the end.
#ifndef KVMRUN_TESTS_SUPPORT_NAMED_VM_FIXTURE_H_
#define KVMRUN_TESTS_SUPPORT_NAMED_VM_FIXTURE_H_

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/qemu_binary.h"
#include "tests/support/qemu_process.h"
#include "tests/support/run_command.h"
#include "tests/support/test_guest.h"

namespace kvmrun::testing {

class NamedVmFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    qemu_ = TestQemuBinary();
    if (qemu_.empty()) GTEST_SKIP() << "qemu-system-x86_64 not installed";
  }
  void TearDown() override {
    if (IsSkipped()) return;
    for (const std::string& name : started_) Kvmrun({"stop", name, "--timeout", "30"});
  }
  CommandOptions Options(std::string input = "") const {
    CommandOptions o;
    o.extra_env = {"XDG_RUNTIME_DIR=" + dir_.path(), "XDG_CACHE_HOME=" + dir_.path() + "/cache",
                   "KVMRUN_QEMU=" + qemu_};
    o.timeout = std::chrono::seconds(180);
    o.stdin_text = std::move(input);
    return o;
  }
  CommandResult Kvmrun(const std::vector<std::string>& args, std::string input = "") {
    return RunKvmrun(args, Options(std::move(input)));
  }
  // `kvmrun run --name NAME --detach` of the test guest, held running (kvmrun.hold), with
  // `extra_append` on its kernel command line and `extra` options; stopped at TearDown.
  CommandResult Detach(const std::string& name, const std::vector<std::string>& extra = {},
                       const std::string& extra_append = "") {
    started_.push_back(name);
    std::vector<std::string> args = RunTestGuestArgs("linux", "kvmrun.hold " + extra_append);
    args.insert(args.end(), {"--name", name, "--detach", "--grace", "5"});
    args.insert(args.end(), extra.begin(), extra.end());
    return Kvmrun(args);
  }
  // A file in the VM's registry directory.
  std::string VmFile(const std::string& name, const std::string& file) const {
    return dir_.path() + "/kvmrun/" + name + "/" + file;
  }

  TempDir dir_;
  std::string qemu_;
  std::vector<std::string> started_;
};

}  // namespace kvmrun::testing

#endif  // KVMRUN_TESTS_SUPPORT_NAMED_VM_FIXTURE_H_

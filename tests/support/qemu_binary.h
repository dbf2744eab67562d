// Which real QEMUs the integration tests use:
//   "system":    $KVMRUN_TEST_QEMU, else qemu-system-x86_64 on PATH (Debian 12: 7.2)
//   "backports": $KVMRUN_TEST_QEMU_BACKPORTS, else the QEMU 10.0 that scripts/fetch-qemu
//                unpacked under the build tree
// Tests skip (with the reason printed) only when the QEMU they need is absent.
#ifndef KVMRUN_TESTS_SUPPORT_QEMU_BINARY_H_
#define KVMRUN_TESTS_SUPPORT_QEMU_BINARY_H_

#include <string>
#include <vector>

namespace kvmrun::testing {

// Absolute path of the system QEMU under test, or "" when none is installed.
std::string TestQemuBinary();

// The labels of the QEMUs tests are parametrized over.
std::vector<std::string> QemuLabels();
// The path for `label`, or "" when that QEMU is absent.
std::string QemuBinary(const std::string& label);
// Why the QEMU for `label` is absent and how to get it.
std::string MissingQemuReason(const std::string& label);

}  // namespace kvmrun::testing

// Skips the current test when no QEMU is installed.
#define KVMRUN_REQUIRE_QEMU(var)                                       \
  const std::string var = ::kvmrun::testing::TestQemuBinary();         \
  if (var.empty())                                                     \
  GTEST_SKIP() << "qemu-system-x86_64 not installed (apt-get install " \
                  "qemu-system-x86, or set KVMRUN_TEST_QEMU)"

// Skips the current test when the QEMU labelled `label` is absent.
#define KVMRUN_REQUIRE_QEMU_LABELLED(var, label)                \
  const std::string var = ::kvmrun::testing::QemuBinary(label); \
  if (var.empty()) GTEST_SKIP() << ::kvmrun::testing::MissingQemuReason(label)

#endif  // KVMRUN_TESTS_SUPPORT_QEMU_BINARY_H_

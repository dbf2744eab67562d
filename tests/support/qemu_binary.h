// Which real QEMU the integration tests use: $KVMRUN_TEST_QEMU, else qemu-system-x86_64 on
// PATH. Tests skip (with the reason printed) only when there is none.
#ifndef KVMRUN_TESTS_SUPPORT_QEMU_BINARY_H_
#define KVMRUN_TESTS_SUPPORT_QEMU_BINARY_H_

#include <string>

namespace kvmrun::testing {

// Absolute path of the QEMU under test, or "" when none is installed.
std::string TestQemuBinary();

}  // namespace kvmrun::testing

// Skips the current test when no QEMU is installed.
#define KVMRUN_REQUIRE_QEMU(var)                                       \
  const std::string var = ::kvmrun::testing::TestQemuBinary();         \
  if (var.empty())                                                     \
  GTEST_SKIP() << "qemu-system-x86_64 not installed (apt-get install " \
                  "qemu-system-x86, or set KVMRUN_TEST_QEMU)"

#endif  // KVMRUN_TESTS_SUPPORT_QEMU_BINARY_H_

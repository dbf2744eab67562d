// The test guest built by scripts/make-test-guest (a ctest fixture builds it before the boot
// tests): a Debian kernel and a busybox initramfs whose init prints KVMRUN-GUEST-READY and
// powers off.
#ifndef KVMRUN_TESTS_SUPPORT_TEST_GUEST_H_
#define KVMRUN_TESTS_SUPPORT_TEST_GUEST_H_

#include <cstdlib>
#include <string>
#include <vector>

#include "kvmrun/vm_spec.h"

namespace kvmrun::testing {

inline std::string TestGuestDir() {
  const char* env = std::getenv("KVMRUN_TEST_GUEST_DIR");
  return env != nullptr && *env != '\0' ? env : KVMRUN_BUILD_DIR "/test-guest";
}
inline std::string TestKernel() { return TestGuestDir() + "/vmlinuz"; }
inline std::string TestInitrd() { return TestGuestDir() + "/initramfs.cpio"; }

inline constexpr char kGuestMarker[] = "KVMRUN-GUEST-READY";

// The host time zone of tests that must tell a local-time RTC from a UTC one, and the same zone
// in the POSIX form the guest's init takes (the guest has no zoneinfo): kvmrun.rtc-local=...
inline constexpr char kTestTimeZone[] = "Asia/Kolkata";
inline constexpr char kTestTimeZonePosix[] = "IST-5:30";

// A VmSpec that boots the test guest under TCG with `qemu`, 256 MiB, no agent port, a panic or
// reboot ending QEMU; `append` is added to the kernel command line (e.g. "kvmrun.shell").
inline VmSpec TestGuestSpec(const std::string& qemu, const std::string& append = "") {
  VmSpec spec;
  spec.qemu = qemu;
  spec.accel = AccelRequest::kTcg;
  spec.memory_mib = 256;
  spec.kernel = TestKernel();
  spec.initrd = TestInitrd();
  spec.append = "console=ttyS0 quiet panic=-1" + (append.empty() ? "" : " " + append);
  spec.no_reboot = true;
  spec.agent = false;
  return spec;
}

// `kvmrun run` arguments that boot the test guest under TCG; `append` is added to the kernel
// command line (e.g. "kvmrun.hold").
inline std::vector<std::string> RunTestGuestArgs(const std::string& os,
                                                 const std::string& append = "") {
  return {"run",
          "--os",
          os,
          "--accel",
          "tcg",
          "--kernel",
          TestKernel(),
          "--initrd",
          TestInitrd(),
          "--append",
          "console=ttyS0 quiet panic=-1" + (append.empty() ? "" : " " + append),
          "--no-reboot"};
}

}  // namespace kvmrun::testing

#endif  // KVMRUN_TESTS_SUPPORT_TEST_GUEST_H_

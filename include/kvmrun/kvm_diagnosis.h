// Is KVM usable here, and if not, why not?
//
// The device checks (open /dev/kvm read-write, KVM_GET_API_VERSION == 12, KVM_CREATE_VM) are
// necessary but not sufficient: on a nested host /dev/kvm can open and KVM_CREATE_VM succeed
// while QEMU aborts with -cpu host ("failed to set MSR 0x10a") and a guest with any other CPU
// model never gets through a Linux boot (seen here: long-mode code ran thousands of times
// slower than native). So the diagnosis ends with a functional check: a tiny boot-sector guest
// that enters long mode, runs a compute loop, writes a line to the serial port and exits
// through isa-debug-exit, booted under KVM with a short deadline, first with -cpu host and
// then with a named model.
#ifndef KVMRUN_KVM_DIAGNOSIS_H_
#define KVMRUN_KVM_DIAGNOSIS_H_

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kvmrun/clock_rendering.h"
#include "kvmrun/process.h"
#include "kvmrun/qemu_capabilities.h"
#include "kvmrun/stop_requests.h"
#include "kvmrun/vm_spec.h"

namespace kvmrun {

enum class KvmProblem {
  kNone,
  kNoDeviceNode,              // no /dev/kvm
  kNoPermission,              // /dev/kvm exists, but this user may not open it
  kModuleNotLoaded,           // no kvm_intel / kvm_amd module
  kNoHardwareVirtualization,  // the CPU shows no vmx/svm: nested virtualization is off
  kBadApiVersion,             // KVM_GET_API_VERSION is not 12
  kCreateVmFailed,            // KVM_CREATE_VM failed
  kGuestDoesNotRun,           // the functional check failed with every CPU model
};
std::string_view ToString(KvmProblem problem);

// The host facts the device checks read. The real one looks at /dev/kvm, /sys/module and
// /proc/cpuinfo; tests substitute a fake.
class KvmHost {
 public:
  virtual ~KvmHost() = default;
  virtual bool DeviceNodeExists() = 0;
  // errno of open("/dev/kvm", O_RDWR), 0 on success.
  virtual int OpenError() = 0;
  // KVM_GET_API_VERSION, or -errno.
  virtual int ApiVersion() = 0;
  // errno of KVM_CREATE_VM, 0 on success.
  virtual int CreateVmError() = 0;
  virtual bool VendorModuleLoaded() = 0;    // kvm_intel, kvm_amd (or another vendor module)
  virtual bool CpuHasVirtualization() = 0;  // vmx or svm in /proc/cpuinfo
  virtual std::string DeviceGroup() = 0;    // the group owning /dev/kvm, e.g. "kvm"
  // Different at every boot of the host (/proc/sys/kernel/random/boot_id): the functional
  // check's cached verdict holds until the next boot.
  virtual std::string BootId() = 0;
  // KVM_CHECK_EXTENSION on /dev/kvm: > 0 when this KVM has the capability, 0 when not.
  virtual int CheckExtension(unsigned long capability) = 0;
};
std::unique_ptr<KvmHost> MakeKvmHost();

// The outcome of booting the probe guest under KVM with one CPU model.
struct KvmBootResult {
  bool ran = false;    // the guest printed its line and exited as expected
  std::string detail;  // otherwise: what happened ("timed out after 3 s", QEMU's error)
};
// Boots the probe guest with `cpu_model` under `accel`; see RunProbeGuest().
using KvmBootCheck = std::function<KvmBootResult(const std::string& cpu_model)>;

struct KvmDiagnosis {
  bool usable = false;
  KvmProblem problem = KvmProblem::kNone;
  std::string summary;    // one line: what is wrong, or "KVM is usable"
  std::string advice;     // what to do about it; empty when usable
  std::string cpu_model;  // the CPU model that runs under KVM ("host", or a named fallback)
  std::vector<std::string> checks;  // each check and its outcome, for `kvmrun doctor`
  bool functional_check_cached = false;
  // The probe guest was not booted (a plan, not a start) and no verdict was cached: KVM was
  // taken as usable on the device checks alone.
  bool functional_check_assumed = false;
  // The Hyper-V enlightenments this host's KVM cannot give a guest, each with the capability
  // it lacks (HostHypervGaps()); filled once /dev/kvm opens.
  HypervGaps hv_unsupported;
};

// The Hyper-V CPU properties kvmrun may write that `host`'s KVM lacks the capability for,
// each with that capability's name: hv-vpindex needs KVM_CAP_HYPERV_VP_INDEX, hv-time
// KVM_CAP_HYPERV_TIME, hv-synic and hv-stimer KVM_CAP_HYPERV_SYNIC(2), hv-tlbflush
// KVM_CAP_HYPERV_TLBFLUSH, hv-ipi KVM_CAP_HYPERV_SEND_IPI, the rest KVM_CAP_HYPERV. Without
// them QEMU cannot give the flag, and may refuse to start the vCPU at all (hv-vpindex on a PVM
// host: "kernel doesn't allow setting HyperV VP_INDEX").
HypervGaps HostHypervGaps(KvmHost& host);

// The named model tried when -cpu host fails the functional check.
inline constexpr char kFallbackCpuModel[] = "qemu64";

// The device checks, then (only when they pass) `boot` with "host" and then the fallback model.
KvmDiagnosis DiagnoseKvm(KvmHost& host, const KvmBootCheck& boot);

nlohmann::json KvmDiagnosisToJson(const KvmDiagnosis& diagnosis);

// The 512-byte boot sector of the probe guest: it enters long mode, touches memory, runs a
// compute loop, writes "KVMRUN-PROBE-OK\r\n" to COM1 and writes 0x10 to isa-debug-exit at
// port 0xf4, so QEMU exits with status 33.
const std::string& ProbeBootSector();
inline constexpr char kProbeGuestMarker[] = "KVMRUN-PROBE-OK";
inline constexpr int kProbeGuestExitStatus = 33;

// Boots the probe guest with `qemu` under `accel` and `cpu_model` within `deadline`, using
// `work_dir` for its disk image. Used by the functional check (under KVM) and by tests (under
// TCG, to prove the probe guest itself works). A stop request ends it with Interrupted.
KvmBootResult RunProbeGuest(ProcessRunner& runner, const std::string& qemu, Accel accel,
                            const std::string& cpu_model, const std::string& work_dir,
                            std::chrono::milliseconds deadline, StopRequests* stop = nullptr);

class ProbeCache;

// DiagnoseKvm for `qemu`: the functional check runs RunProbeGuest under KVM (kProbeDeadline per
// CPU model) in `work_dir`, and its outcome is cached with the binary's capabilities, keyed by
// the host's boot id, so it costs its seconds once per boot.
inline constexpr std::chrono::milliseconds kProbeDeadline{3000};
// Without `boot_probe_guest`, nothing is booted: a cached verdict is used, else KVM is assumed
// to pass the functional check (functional_check_assumed).
KvmDiagnosis DiagnoseKvmForQemu(const std::string& qemu, KvmHost& host, ProcessRunner& runner,
                                const ProbeCache& cache, const std::string& work_dir,
                                StopRequests* stop = nullptr, bool boot_probe_guest = true);

// What the launcher decided, and what it says about it.
struct AccelDecision {
  Accel accel = Accel::kTcg;
  std::string cpu_model;  // default CPU model for this accelerator
  std::string notice;     // non-empty when auto fell back to TCG: one line saying why
};

// auto: KVM when usable, else TCG with a notice; kvm: KVM or VmError with the diagnosis; tcg.
AccelDecision ChooseAccel(AccelRequest request, const KvmDiagnosis& diagnosis);

}  // namespace kvmrun

#endif  // KVMRUN_KVM_DIAGNOSIS_H_

#include "kvmrun/kvm_diagnosis.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "kvmrun/clock_rendering.h"
#include "kvmrun/error.h"
#include "kvmrun/qemu_command.h"
#include "kvmrun/qemu_probe.h"
#include "launcher/qemu_install.h"
#include "launcher/run_capture.h"

namespace kvmrun {

std::string_view ToString(KvmProblem problem) {
  switch (problem) {
    case KvmProblem::kNone:
      return "none";
    case KvmProblem::kNoDeviceNode:
      return "no-device-node";
    case KvmProblem::kNoPermission:
      return "no-permission";
    case KvmProblem::kModuleNotLoaded:
      return "module-not-loaded";
    case KvmProblem::kNoHardwareVirtualization:
      return "no-hardware-virtualization";
    case KvmProblem::kBadApiVersion:
      return "bad-api-version";
    case KvmProblem::kCreateVmFailed:
      return "create-vm-failed";
    case KvmProblem::kGuestDoesNotRun:
      return "guest-does-not-run";
  }
  return "?";
}

namespace {

constexpr char kDevice[] = "/dev/kvm";

class RealKvmHost : public KvmHost {
 public:
  ~RealKvmHost() override {
    if (fd_ >= 0) close(fd_);
  }
  bool DeviceNodeExists() override {
    struct stat st {};
    return stat(kDevice, &st) == 0;
  }
  int OpenError() override {
    if (fd_ < 0) fd_ = open(kDevice, O_RDWR | O_CLOEXEC);
    return fd_ >= 0 ? 0 : errno;
  }
  int ApiVersion() override {
    if (OpenError() != 0) return -EBADF;
    const int version = ioctl(fd_, KVM_GET_API_VERSION, 0);
    return version >= 0 ? version : -errno;
  }
  int CreateVmError() override {
    if (OpenError() != 0) return EBADF;
    const int vm = ioctl(fd_, KVM_CREATE_VM, 0);
    if (vm < 0) return errno;
    close(vm);
    return 0;
  }
  bool VendorModuleLoaded() override {
    // kvm_intel, kvm_amd, or another vendor module (such as kvm_pvm) on top of kvm.
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/sys/module", ec)) {
      if (entry.path().filename().string().rfind("kvm_", 0) == 0) return true;
    }
    return false;
  }
  bool CpuHasVirtualization() override {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
      if (line.compare(0, 5, "flags") != 0) continue;
      std::istringstream flags(line);
      std::string flag;
      while (flags >> flag) {
        if (flag == "vmx" || flag == "svm") return true;
      }
      return false;
    }
    return false;
  }
  std::string BootId() override {
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string id;
    std::getline(in, id);
    return id;
  }
  int CheckExtension(unsigned long capability) override {
    if (OpenError() != 0) return 0;
    const int r = ioctl(fd_, KVM_CHECK_EXTENSION, capability);
    return r > 0 ? r : 0;
  }
  std::string DeviceGroup() override {
    struct stat st {};
    if (stat(kDevice, &st) != 0) return "kvm";
    const group* g = getgrgid(st.st_gid);
    return g != nullptr ? g->gr_name : std::to_string(st.st_gid);
  }

 private:
  int fd_ = -1;
};

KvmDiagnosis Fail(KvmDiagnosis d, KvmProblem problem, std::string summary, std::string advice) {
  d.usable = false;
  d.problem = problem;
  d.summary = std::move(summary);
  d.advice = std::move(advice);
  return d;
}

// The probe guest's boot sector, assembled with GNU as (`as --64`, `objcopy -O binary`) from:
//
//   .code16
//   .globl _start
//   _start:
//     cli
//     xorw %ax, %ax
//     movw %ax, %ds
//     movw %ax, %es
//     movw %ax, %ss
//     movw $0x7c00, %sp
//     movw $0x1000, %di
//     movw $0x1800, %cx
//     rep stosw
//     movl $0x2003, 0x1000
//     movl $0x3003, 0x2000
//     movw $0x3000, %di
//     movl $0x83, %eax
//   5:
//     movl %eax, (%di)
//     addl $0x200000, %eax
//     addw $8, %di
//     cmpw $0x3040, %di
//     jb 5b
//     lgdt gdt_desc - _start + 0x7c00
//     movl %cr4, %eax
//     orl $0x20, %eax
//     movl %eax, %cr4
//     movl $0x1000, %eax
//     movl %eax, %cr3
//     movl $0xc0000080, %ecx
//     rdmsr
//     orl $0x100, %eax
//     wrmsr
//     movl %cr0, %eax
//     orl $0x80000001, %eax
//     movl %eax, %cr0
//     ljmp $0x08, $(long_mode - _start + 0x7c00)
//   .code64
//   long_mode:
//     movl $0x100000, %edi
//   4:
//     movl %edi, (%rdi)
//     addl $0x1000, %edi
//     cmpl $0xf00000, %edi
//     jb 4b
//     movl $100000000, %ecx
//   6:
//     decl %ecx
//     jnz 6b
//     movl $(msg - _start + 0x7c00), %esi
//     movw $0x3f8, %dx
//   1:
//     lodsb
//     testb %al, %al
//     jz 2f
//     outb %al, %dx
//     jmp 1b
//   2:
//     movw $0xf4, %dx
//     movb $0x10, %al
//     outb %al, %dx
//   3:
//     hlt
//     jmp 3b
//   .p2align 3
//   gdt:
//     .quad 0
//     .quad 0x00209a0000000000
//     .quad 0x0000920000000000
//   gdt_desc:
//     .word gdt_desc - gdt - 1
//     .long gdt - _start + 0x7c00
//   msg:
//     .asciz "KVMRUN-PROBE-OK\r\n"
//
// It enters long mode the way a kernel does, touches 14 MiB through 2 MiB pages, then spins
// 10^8 times before printing. That loop is the point: on the broken nested host this project
// met, KVM ran real-mode code but executed long-mode code so slowly that a Linux kernel never
// finished decompressing; a healthy KVM runs the loop in well under 100 ms, TCG in about 1 s.
std::string MakeBootSector() {
  static constexpr unsigned char kCode[] = {
      0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0xbc, 0x00, 0x7c, 0xbf, 0x00, 0x10,
      0xb9, 0x00, 0x18, 0xf3, 0xab, 0x66, 0xc7, 0x06, 0x00, 0x10, 0x03, 0x20, 0x00, 0x00, 0x66,
      0xc7, 0x06, 0x00, 0x20, 0x03, 0x30, 0x00, 0x00, 0xbf, 0x00, 0x30, 0x66, 0xb8, 0x83, 0x00,
      0x00, 0x00, 0x66, 0x89, 0x05, 0x66, 0x05, 0x00, 0x00, 0x20, 0x00, 0x83, 0xc7, 0x08, 0x81,
      0xff, 0x40, 0x30, 0x72, 0xee, 0x0f, 0x01, 0x16, 0xd0, 0x7c, 0x0f, 0x20, 0xe0, 0x66, 0x83,
      0xc8, 0x20, 0x0f, 0x22, 0xe0, 0x66, 0xb8, 0x00, 0x10, 0x00, 0x00, 0x0f, 0x22, 0xd8, 0x66,
      0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x66, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x0f, 0x30,
      0x0f, 0x20, 0xc0, 0x66, 0x0d, 0x01, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0xea, 0x7a, 0x7c,
      0x08, 0x00, 0xbf, 0x00, 0x00, 0x10, 0x00, 0x89, 0x3f, 0x81, 0xc7, 0x00, 0x10, 0x00, 0x00,
      0x81, 0xff, 0x00, 0x00, 0xf0, 0x00, 0x72, 0xf0, 0xb9, 0x00, 0xe1, 0xf5, 0x05, 0xff, 0xc9,
      0x75, 0xfc, 0xbe, 0xd6, 0x7c, 0x00, 0x00, 0x66, 0xba, 0xf8, 0x03, 0xac, 0x84, 0xc0, 0x74,
      0x03, 0xee, 0xeb, 0xf8, 0x66, 0xba, 0xf4, 0x00, 0xb0, 0x10, 0xee, 0xf4, 0xeb, 0xfd, 0x0f,
      0x1f, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x9a, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x92, 0x00, 0x00, 0x17, 0x00,
      0xb8, 0x7c, 0x00, 0x00,
  };
  std::string sector(reinterpret_cast<const char*>(kCode), sizeof(kCode));
  sector += kProbeGuestMarker;  // msg: the code above points %esi at this offset
  sector += "\r\n";
  sector += '\0';
  sector.resize(510, '\0');
  sector += "\x55\xaa";
  return sector;
}

}  // namespace

std::unique_ptr<KvmHost> MakeKvmHost() { return std::make_unique<RealKvmHost>(); }

KvmDiagnosis DiagnoseKvm(KvmHost& host, const KvmBootCheck& boot) {
  KvmDiagnosis d;
  const bool has_vmx = host.CpuHasVirtualization();
  d.checks.push_back(std::string("CPU virtualization flags (vmx/svm): ") +
                     (has_vmx ? "present" : "absent"));
  if (!host.DeviceNodeExists()) {
    d.checks.push_back("/dev/kvm: missing");
    if (!has_vmx) {
      return Fail(d, KvmProblem::kNoHardwareVirtualization,
                  "no /dev/kvm, and the CPU shows no vmx/svm: hardware virtualization is off "
                  "(on a VM: nested virtualization is not enabled)",
                  "enable VT-x/AMD-V in the firmware, or nested virtualization on the host "
                  "(e.g. kvm_intel nested=1), or use TCG");
    }
    if (!host.VendorModuleLoaded()) {
      return Fail(d, KvmProblem::kModuleNotLoaded,
                  "no /dev/kvm: the kvm_intel / kvm_amd module is not loaded",
                  "sudo modprobe kvm_intel (or kvm_amd)");
    }
    return Fail(d, KvmProblem::kNoDeviceNode, "no /dev/kvm device node",
                "create it (udev normally does), or use TCG");
  }
  d.checks.push_back("/dev/kvm: present");
  if (const int err = host.OpenError(); err != 0) {
    d.checks.push_back(std::string("open /dev/kvm read-write: ") + std::strerror(err));
    if (err == EACCES || err == EPERM) {
      const std::string group = host.DeviceGroup();
      return Fail(d, KvmProblem::kNoPermission,
                  "no permission to open /dev/kvm (owned by group '" + group + "')",
                  "sudo usermod -aG " + group + " $USER, then log in again");
    }
    return Fail(d, KvmProblem::kNoDeviceNode,
                std::string("cannot open /dev/kvm: ") + std::strerror(err),
                "check the device node and the kvm modules, or use TCG");
  }
  d.checks.push_back("open /dev/kvm read-write: ok");
  const int api = host.ApiVersion();
  d.checks.push_back("KVM_GET_API_VERSION: " + std::to_string(api));
  if (api != 12) {
    return Fail(d, KvmProblem::kBadApiVersion,
                "KVM_GET_API_VERSION returned " + std::to_string(api) + ", not 12",
                "this kernel's KVM is not the one QEMU speaks; use TCG");
  }
  if (const int err = host.CreateVmError(); err != 0) {
    d.checks.push_back(std::string("KVM_CREATE_VM: ") + std::strerror(err));
    return Fail(d, KvmProblem::kCreateVmFailed,
                std::string("KVM_CREATE_VM failed: ") + std::strerror(err),
                has_vmx ? "check dmesg for KVM errors, or use TCG"
                        : "nested virtualization is probably off; use TCG");
  }
  d.checks.push_back("KVM_CREATE_VM: ok");
  d.hv_unsupported = HostHypervGaps(host);
  std::string gaps;
  for (const auto& [property, capability] : d.hv_unsupported) {
    gaps += (gaps.empty() ? "" : ", ") + property + " (" + capability + ")";
  }
  d.checks.push_back("Hyper-V enlightenments: " +
                     (gaps.empty() ? std::string("all that kvmrun uses") : "lacks " + gaps));

  std::string failures;
  for (const std::string& model : {std::string("host"), std::string(kFallbackCpuModel)}) {
    const KvmBootResult result = boot(model);
    d.checks.push_back("probe guest under KVM with -cpu " + model + ": " +
                       (result.ran ? "ran" : result.detail));
    if (result.ran) {
      d.usable = true;
      d.cpu_model = model;
      d.summary = failures.empty() ? "KVM is usable"
                                   : "KVM is usable with -cpu " + model + " (" + failures + ")";
      return d;
    }
    failures += (failures.empty() ? "-cpu " : "; -cpu ") + model + ": " + result.detail;
  }
  return Fail(d, KvmProblem::kGuestDoesNotRun,
              "/dev/kvm passes the device checks, but the probe guest does not run under KVM (" +
                  failures + ")",
              "this host's KVM cannot run ordinary guests (e.g. broken nested virtualization); "
              "use TCG");
}

HypervGaps HostHypervGaps(KvmHost& host) {
  struct Need {
    const char* capability;
    std::vector<unsigned long> any_of;
  };
  const Need hyperv{"KVM_CAP_HYPERV", {KVM_CAP_HYPERV}};
  const std::map<std::string_view, Need> needs = {
      {"hv-time", {"KVM_CAP_HYPERV_TIME", {KVM_CAP_HYPERV_TIME}}},
      {"hv-vpindex", {"KVM_CAP_HYPERV_VP_INDEX", {KVM_CAP_HYPERV_VP_INDEX}}},
      {"hv-synic", {"KVM_CAP_HYPERV_SYNIC", {KVM_CAP_HYPERV_SYNIC, KVM_CAP_HYPERV_SYNIC2}}},
      {"hv-stimer", {"KVM_CAP_HYPERV_SYNIC", {KVM_CAP_HYPERV_SYNIC, KVM_CAP_HYPERV_SYNIC2}}},
      {"hv-tlbflush", {"KVM_CAP_HYPERV_TLBFLUSH", {KVM_CAP_HYPERV_TLBFLUSH}}},
      {"hv-ipi", {"KVM_CAP_HYPERV_SEND_IPI", {KVM_CAP_HYPERV_SEND_IPI}}},
  };
  HypervGaps gaps;
  const bool base = host.CheckExtension(KVM_CAP_HYPERV) > 0;
  for (std::string_view property : KnownHypervProperties()) {
    const auto it = needs.find(property);
    const Need& need = it != needs.end() ? it->second : hyperv;
    const bool has =
        base && std::any_of(need.any_of.begin(), need.any_of.end(),
                            [&](unsigned long c) { return host.CheckExtension(c) > 0; });
    if (!has) gaps.emplace(property, base ? need.capability : hyperv.capability);
  }
  return gaps;
}

nlohmann::json KvmDiagnosisToJson(const KvmDiagnosis& d) {
  return {{"usable", d.usable},
          {"problem", ToString(d.problem)},
          {"summary", d.summary},
          {"advice", d.advice},
          {"cpu_model", d.cpu_model},
          {"checks", d.checks},
          {"functional_check_cached", d.functional_check_cached},
          {"hv_unsupported", d.hv_unsupported}};
}

const std::string& ProbeBootSector() {
  static const std::string sector = MakeBootSector();
  return sector;
}

KvmBootResult RunProbeGuest(ProcessRunner& runner, const std::string& qemu, Accel accel,
                            const std::string& cpu_model, const std::string& work_dir,
                            std::chrono::milliseconds deadline, StopRequests* stop) {
  const std::string image = work_dir + "/kvm-probe.img";
  {
    std::ofstream out(image, std::ios::binary | std::ios::trunc);
    out << ProbeBootSector();
    if (!out) return {false, "cannot write " + image};
  }
  std::vector<std::string> args = {
      "-nodefaults", "-no-user-config",
      "-display",    "none",
      "-accel",      std::string(ToString(accel)),
      "-cpu",        cpu_model,
      "-m",          "16",
      "-drive",      LocalFileDrive(image, DiskFormat::kRaw) + ",if=ide,index=0,media=disk",
      "-serial",     "stdio",
      "-device",     "isa-debug-exit,iobase=0xf4,iosize=0x04",
      "-no-reboot"};
  for (const std::string& dir : FirmwareDirsFor(qemu)) {
    args.insert(args.end(), {"-L", LocalPath(dir)});
  }
  const SpawnRequest request = QemuSpawnRequest(qemu, args);
  const CapturedRun run = [&] {
    try {
      return RunAndCapture(runner, request, deadline, 1 << 20, stop);
    } catch (const Interrupted&) {
      std::remove(image.c_str());
      throw;
    }
  }();
  std::remove(image.c_str());
  if (run.out.find(kProbeGuestMarker) != std::string::npos &&
      run.status.code == kProbeGuestExitStatus) {
    return {true, ""};
  }
  if (run.timed_out) {
    return {false, "the guest did not finish within " + std::to_string(deadline.count()) + " ms"};
  }
  std::string said = run.err.substr(0, run.err.find('\n'));
  return {false, "QEMU " + run.status.ToString() + (said.empty() ? "" : ": " + said)};
}

namespace {

// A few words for the one-line TCG notice; the full story is in the diagnosis.
std::string Brief(KvmProblem problem) {
  switch (problem) {
    case KvmProblem::kNone:
      return "no problem found";
    case KvmProblem::kNoDeviceNode:
      return "no /dev/kvm";
    case KvmProblem::kNoPermission:
      return "no permission to open /dev/kvm";
    case KvmProblem::kModuleNotLoaded:
      return "the kvm vendor module is not loaded";
    case KvmProblem::kNoHardwareVirtualization:
      return "no hardware virtualization: nested virtualization off?";
    case KvmProblem::kBadApiVersion:
      return "unexpected KVM API version";
    case KvmProblem::kCreateVmFailed:
      return "KVM_CREATE_VM failed";
    case KvmProblem::kGuestDoesNotRun:
      return "a probe guest does not run under it";
  }
  return "unknown";
}

}  // namespace

KvmDiagnosis DiagnoseKvmForQemu(const std::string& qemu, KvmHost& host, ProcessRunner& runner,
                                const ProbeCache& cache, const std::string& work_dir,
                                StopRequests* stop, bool boot_probe_guest) {
  std::optional<nlohmann::json> entry = cache.Load(qemu);
  const std::string boot_id = host.BootId();
  nlohmann::json cached = nlohmann::json::object();
  if (entry && entry->contains("kvm_check") &&
      (*entry)["kvm_check"].value("boot_id", "") == boot_id) {
    cached = (*entry)["kvm_check"].value("results", nlohmann::json::object());
  }
  bool used_cache = false;
  bool ran_check = false;
  bool assumed = false;
  KvmDiagnosis diagnosis = DiagnoseKvm(host, [&](const std::string& model) {
    if (cached.contains(model) && cached[model].is_object()) {
      used_cache = true;
      return KvmBootResult{cached[model].value("ran", false), cached[model].value("detail", "")};
    }
    if (!boot_probe_guest) {
      assumed = true;
      return KvmBootResult{true, "assumed (not booted)"};
    }
    ran_check = true;
    KvmBootResult result =
        RunProbeGuest(runner, qemu, Accel::kKvm, model, work_dir, kProbeDeadline, stop);
    cached[model] = {{"ran", result.ran}, {"detail", result.detail}};
    return result;
  });
  diagnosis.functional_check_cached = used_cache && !ran_check && !assumed;
  diagnosis.functional_check_assumed = assumed && diagnosis.usable;
  if (ran_check) {
    nlohmann::json updated = entry.value_or(nlohmann::json::object());
    updated["kvm_check"] = {{"boot_id", boot_id}, {"results", cached}};
    cache.Store(qemu, updated);
  }
  return diagnosis;
}

AccelDecision ChooseAccel(AccelRequest request, const KvmDiagnosis& diagnosis) {
  switch (request) {
    case AccelRequest::kTcg:
      return {Accel::kTcg, std::string(DefaultCpuModel(Accel::kTcg)), ""};
    case AccelRequest::kKvm:
      if (!diagnosis.usable) {
        throw VmError("KVM was asked for: " + diagnosis.summary + "; " + diagnosis.advice);
      }
      return {Accel::kKvm, diagnosis.cpu_model, ""};
    case AccelRequest::kAuto:
      if (diagnosis.usable) return {Accel::kKvm, diagnosis.cpu_model, ""};
      return {
          Accel::kTcg, std::string(DefaultCpuModel(Accel::kTcg)),
          "KVM is not usable (" + Brief(diagnosis.problem) + "); running under TCG, 10-50x slower"};
  }
  return {Accel::kTcg, std::string(DefaultCpuModel(Accel::kTcg)), ""};
}

}  // namespace kvmrun

#include "kvmrun/kvm_diagnosis.h"

#include <gtest/gtest.h>
#include <linux/kvm.h>

#include <algorithm>
#include <cerrno>

#include "kvmrun/error.h"
#include "tests/support/fake_kvm_host.h"

namespace kvmrun {
namespace {

using testing::FakeKvmHost;

struct Boots {
  std::map<std::string, KvmBootResult> results;
  std::vector<std::string> tried;
  KvmBootCheck Check() {
    return [this](const std::string& model) {
      tried.push_back(model);
      return results.count(model) ? results[model] : KvmBootResult{false, "not scripted"};
    };
  }
};

TEST(DiagnoseKvmTest, UsableWhenEverythingPassesWithCpuHost) {
  FakeKvmHost host;
  Boots boots{{{"host", {true, ""}}}, {}};
  const KvmDiagnosis d = DiagnoseKvm(host, boots.Check());
  EXPECT_TRUE(d.usable);
  EXPECT_EQ(d.cpu_model, "host");
  EXPECT_EQ(d.summary, "KVM is usable");
  EXPECT_EQ(boots.tried, (std::vector<std::string>{"host"}));
}

TEST(HostHypervGapsTest, EachPropertyNeedsItsCapability) {
  FakeKvmHost full;
  EXPECT_TRUE(HostHypervGaps(full).empty());
  // A PVM host: KVM_CAP_HYPERV_VP_INDEX missing, and QEMU refuses hv-vpindex there.
  FakeKvmHost pvm;
  pvm.missing_capabilities = {KVM_CAP_HYPERV_VP_INDEX};
  EXPECT_EQ(HostHypervGaps(pvm), (HypervGaps{{"hv-vpindex", "KVM_CAP_HYPERV_VP_INDEX"}}));
  // SynIC through either capability.
  FakeKvmHost synic2;
  synic2.missing_capabilities = {KVM_CAP_HYPERV_SYNIC};
  EXPECT_TRUE(HostHypervGaps(synic2).empty());
  synic2.missing_capabilities.insert(KVM_CAP_HYPERV_SYNIC2);
  EXPECT_EQ(HostHypervGaps(synic2), (HypervGaps{{"hv-stimer", "KVM_CAP_HYPERV_SYNIC"},
                                                {"hv-synic", "KVM_CAP_HYPERV_SYNIC"}}));
  // No Hyper-V at all: every property, for the base capability.
  FakeKvmHost none;
  none.missing_capabilities = {KVM_CAP_HYPERV};
  const HypervGaps gaps = HostHypervGaps(none);
  EXPECT_EQ(gaps.size(), KnownHypervProperties().size());
  EXPECT_EQ(gaps.at("hv-ipi"), "KVM_CAP_HYPERV");
}

TEST(DiagnoseKvmTest, ListsTheHypervGapsAmongItsChecks) {
  FakeKvmHost host;
  host.missing_capabilities = {KVM_CAP_HYPERV_VP_INDEX};
  Boots boots{{{"host", {true, ""}}}, {}};
  const KvmDiagnosis d = DiagnoseKvm(host, boots.Check());
  EXPECT_EQ(d.hv_unsupported.size(), 1u);
  EXPECT_NE(std::find(d.checks.begin(), d.checks.end(),
                      "Hyper-V enlightenments: lacks hv-vpindex (KVM_CAP_HYPERV_VP_INDEX)"),
            d.checks.end());
}

TEST(DiagnoseKvmTest, FallsBackToANamedModelAndSaysWhy) {
  FakeKvmHost host;
  Boots boots{{{"host", {false, "QEMU killed by SIGABRT: failed to set MSR 0x10a"}},
               {kFallbackCpuModel, {true, ""}}},
              {}};
  const KvmDiagnosis d = DiagnoseKvm(host, boots.Check());
  EXPECT_TRUE(d.usable);
  EXPECT_EQ(d.cpu_model, "qemu64");
  EXPECT_EQ(d.summary,
            "KVM is usable with -cpu qemu64 (-cpu host: QEMU killed by SIGABRT: failed to set MSR "
            "0x10a)");
}

TEST(DiagnoseKvmTest, DeviceChecksPassButNoGuestRuns) {
  FakeKvmHost host;
  host.vmx = false;
  Boots boots{{{"host", {false, "QEMU killed by SIGABRT"}},
               {kFallbackCpuModel, {false, "the guest did not finish within 3000 ms"}}},
              {}};
  const KvmDiagnosis d = DiagnoseKvm(host, boots.Check());
  EXPECT_FALSE(d.usable);
  EXPECT_EQ(d.problem, KvmProblem::kGuestDoesNotRun);
  EXPECT_NE(d.summary.find("-cpu qemu64: the guest did not finish within 3000 ms"),
            std::string::npos);
  EXPECT_EQ(d.checks.back(),
            "probe guest under KVM with -cpu qemu64: the guest did not finish within 3000 ms");
}

struct DeviceCase {
  const char* name;
  std::function<void(FakeKvmHost&)> setup;
  KvmProblem problem;
  const char* summary_part;
  const char* advice_part;
};

class DeviceProblemTest : public ::testing::TestWithParam<DeviceCase> {};

TEST_P(DeviceProblemTest, NamesTheCauseAndNeverBootsTheProbe) {
  FakeKvmHost host;
  GetParam().setup(host);
  Boots boots;
  const KvmDiagnosis d = DiagnoseKvm(host, boots.Check());
  EXPECT_FALSE(d.usable);
  EXPECT_EQ(d.problem, GetParam().problem);
  EXPECT_NE(d.summary.find(GetParam().summary_part), std::string::npos) << d.summary;
  EXPECT_NE(d.advice.find(GetParam().advice_part), std::string::npos) << d.advice;
  EXPECT_TRUE(boots.tried.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Causes, DeviceProblemTest,
    ::testing::Values(DeviceCase{"NestedOff",
                                 [](FakeKvmHost& h) {
                                   h.node = false;
                                   h.vmx = false;
                                 },
                                 KvmProblem::kNoHardwareVirtualization, "nested virtualization",
                                 "nested=1"},
                      DeviceCase{"ModuleMissing",
                                 [](FakeKvmHost& h) {
                                   h.node = false;
                                   h.module = false;
                                 },
                                 KvmProblem::kModuleNotLoaded, "module is not loaded", "modprobe"},
                      DeviceCase{"NodeMissing", [](FakeKvmHost& h) { h.node = false; },
                                 KvmProblem::kNoDeviceNode, "no /dev/kvm", "use TCG"},
                      DeviceCase{"NoPermission",
                                 [](FakeKvmHost& h) {
                                   h.open_error = EACCES;
                                   h.group = "kvm";
                                 },
                                 KvmProblem::kNoPermission, "owned by group 'kvm'",
                                 "usermod -aG kvm"},
                      DeviceCase{"ApiVersion", [](FakeKvmHost& h) { h.api = 11; },
                                 KvmProblem::kBadApiVersion, "returned 11, not 12", "use TCG"},
                      DeviceCase{"CreateVm", [](FakeKvmHost& h) { h.create_error = ENOMEM; },
                                 KvmProblem::kCreateVmFailed, "KVM_CREATE_VM failed", "dmesg"}),
    [](const auto& info) { return std::string(info.param.name); });

KvmDiagnosis Usable() {
  KvmDiagnosis d;
  d.usable = true;
  d.cpu_model = "host";
  return d;
}

KvmDiagnosis Unusable() {
  KvmDiagnosis d;
  d.problem = KvmProblem::kNoPermission;
  d.summary = "no permission to open /dev/kvm (owned by group 'kvm')";
  d.advice = "sudo usermod -aG kvm $USER, then log in again";
  return d;
}

TEST(ChooseAccelTest, AutoTakesKvmWhenUsableElseTcgWithANotice) {
  const AccelDecision kvm = ChooseAccel(AccelRequest::kAuto, Usable());
  EXPECT_EQ(kvm.accel, Accel::kKvm);
  EXPECT_EQ(kvm.cpu_model, "host");
  EXPECT_TRUE(kvm.notice.empty());
  const AccelDecision tcg = ChooseAccel(AccelRequest::kAuto, Unusable());
  EXPECT_EQ(tcg.accel, Accel::kTcg);
  EXPECT_EQ(tcg.cpu_model, "max");
  EXPECT_EQ(tcg.notice,
            "KVM is not usable (no permission to open /dev/kvm); running under TCG, 10-50x "
            "slower");
}

TEST(ChooseAccelTest, ExplicitKvmFailsWithTheDiagnosisAndTcgIsTcg) {
  try {
    ChooseAccel(AccelRequest::kKvm, Unusable());
    FAIL();
  } catch (const VmError& e) {
    EXPECT_STREQ(
        e.what(),
        "KVM was asked for: no permission to open /dev/kvm (owned by group 'kvm'); sudo usermod "
        "-aG kvm $USER, then log in again");
  }
  EXPECT_EQ(ChooseAccel(AccelRequest::kTcg, Usable()).accel, Accel::kTcg);
}

TEST(ProbeBootSectorTest, IsABootableSectorCarryingTheMarker) {
  const std::string& sector = ProbeBootSector();
  ASSERT_EQ(sector.size(), 512u);
  EXPECT_EQ(sector.substr(510), "\x55\xaa");
  EXPECT_NE(sector.find(std::string(kProbeGuestMarker) + "\r\n"), std::string::npos);
  EXPECT_EQ(static_cast<unsigned char>(sector[0]), 0xfa) << "starts with cli";
}

}  // namespace
}  // namespace kvmrun

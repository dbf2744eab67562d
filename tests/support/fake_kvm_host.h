// A KVM host whose every fact the test sets; by default one where KVM passes every check.
#ifndef KVMRUN_TESTS_SUPPORT_FAKE_KVM_HOST_H_
#define KVMRUN_TESTS_SUPPORT_FAKE_KVM_HOST_H_

#include <set>
#include <string>

#include "kvmrun/kvm_diagnosis.h"

namespace kvmrun::testing {

struct FakeKvmHost : KvmHost {
  bool node = true;
  int open_error = 0;
  int api = 12;
  int create_error = 0;
  bool module = true;
  bool vmx = true;
  std::string group = "kvm";
  std::set<unsigned long> missing_capabilities;  // every other one is there

  bool DeviceNodeExists() override { return node; }
  int OpenError() override { return open_error; }
  int ApiVersion() override { return api; }
  int CreateVmError() override { return create_error; }
  bool VendorModuleLoaded() override { return module; }
  bool CpuHasVirtualization() override { return vmx; }
  std::string DeviceGroup() override { return group; }
  std::string BootId() override { return "boot-1"; }
  int CheckExtension(unsigned long capability) override {
    return missing_capabilities.count(capability) != 0 ? 0 : 1;
  }
};

}  // namespace kvmrun::testing

#endif  // KVMRUN_TESTS_SUPPORT_FAKE_KVM_HOST_H_

// Typed wrappers for the QMP commands kvmrun reads the clock state with. Each runs one command
// on a QmpClient and parses its reply; a reply of an unexpected shape throws QmpProtocolError
// naming the command. QMP errors and timeouts propagate from QmpClient::Execute.
#ifndef KVMRUN_QMP_COMMANDS_H_
#define KVMRUN_QMP_COMMANDS_H_

#include <optional>
#include <string>
#include <vector>

#include "kvmrun/qmp_client.h"

namespace kvmrun {

struct QemuVersionInfo {
  QemuVersion version;
  std::string package;
};
QemuVersionInfo QueryVersion(QmpClient& qmp);

struct KvmStatus {
  bool enabled = false;  // KVM is the accelerator of this VM
  bool present = false;  // KVM support is compiled in (says nothing about /dev/kvm)
};
KvmStatus QueryKvm(QmpClient& qmp);

struct VmStatus {
  std::string status;  // "prelaunch", "paused", "running", "shutdown", ...
  bool running = false;
};
VmStatus QueryStatus(QmpClient& qmp);

struct QomProperty {
  std::string name;
  std::string type;                             // e.g. "child<mc146818rtc>", "link<...>", "bool"
  std::optional<nlohmann::json> default_value;  // device-list-properties only
};
std::vector<QomProperty> QomList(QmpClient& qmp, const std::string& path);
// A qom-list reply read field by field (for a batch, QmpClient::ExecuteAll). Throws
// QmpProtocolError naming the command for a reply of another shape.
std::vector<QomProperty> QomListFromReply(const nlohmann::json& reply);
nlohmann::json QomGet(QmpClient& qmp, const std::string& path, const std::string& property);

struct CpuInfo {
  int cpu_index = 0;
  std::string qom_path;
  std::int64_t thread_id = 0;
};
std::vector<CpuInfo> QueryCpusFast(QmpClient& qmp);
std::vector<CpuInfo> CpusFromReply(const nlohmann::json& reply);
KvmStatus KvmStatusFromReply(const nlohmann::json& reply);

struct QomType {
  std::string name;
  std::string parent;
};
// Types implementing `implements` (every type when empty); abstract types only when asked.
std::vector<QomType> QomListTypes(QmpClient& qmp, const std::string& implements = {},
                                  bool abstract = false);

std::vector<QomProperty> DeviceListProperties(QmpClient& qmp, const std::string& type_name);
// qom-list-properties: the properties of a non-device type such as a machine.
std::vector<QomProperty> QomListProperties(QmpClient& qmp, const std::string& type_name);

struct CommandLineOption {
  std::string option;                   // e.g. "rtc"
  std::vector<std::string> parameters;  // e.g. "base", "clock", "driftfix"
};
// The options QEMU's command line accepts with key=value parameters (not plain flags).
std::vector<CommandLineOption> QueryCommandLineOptions(QmpClient& qmp,
                                                       const std::string& option = {});

struct MachineInfo {
  std::string name;
  std::string alias;  // e.g. "pc" for pc-i440fx-7.2
  bool is_default = false;
  int cpu_max = 0;  // the most CPUs it takes; 0 when QEMU did not say
};
std::vector<MachineInfo> QueryMachines(QmpClient& qmp);

}  // namespace kvmrun

#endif  // KVMRUN_QMP_COMMANDS_H_

#include "kvmrun/qmp_commands.h"

namespace kvmrun {
namespace {

// Runs `command` and converts the reply with `parse`; a reply of the wrong shape becomes a
// QmpProtocolError that names the command and shows the reply.
template <typename Parse>
auto Run(QmpClient& qmp, const std::string& command, const nlohmann::json& arguments, Parse parse) {
  const nlohmann::json reply = qmp.Execute(command, arguments);
  try {
    return parse(reply);
  } catch (const nlohmann::json::exception& e) {
    throw QmpProtocolError("unexpected reply to '" + command + "' (" + e.what() +
                           "): " + JsonExcerpt(reply));
  }
}

std::vector<QomProperty> ParseProperties(const nlohmann::json& reply) {
  std::vector<QomProperty> properties;
  for (const auto& p : reply) {
    QomProperty property{p.at("name").get<std::string>(), p.value("type", ""), std::nullopt};
    if (p.contains("default-value")) property.default_value = p.at("default-value");
    properties.push_back(std::move(property));
  }
  return properties;
}

}  // namespace

QemuVersionInfo QueryVersion(QmpClient& qmp) {
  return Run(qmp, "query-version", nullptr, [](const nlohmann::json& r) {
    const auto& q = r.at("qemu");
    return QemuVersionInfo{QemuVersionFromJson(q), r.value("package", "")};
  });
}

KvmStatus QueryKvm(QmpClient& qmp) {
  return Run(qmp, "query-kvm", nullptr, [](const nlohmann::json& r) {
    return KvmStatus{r.at("enabled").get<bool>(), r.at("present").get<bool>()};
  });
}

VmStatus QueryStatus(QmpClient& qmp) {
  return Run(qmp, "query-status", nullptr, [](const nlohmann::json& r) {
    return VmStatus{r.at("status").get<std::string>(), r.at("running").get<bool>()};
  });
}

std::vector<QomProperty> QomList(QmpClient& qmp, const std::string& path) {
  return Run(qmp, "qom-list", {{"path", path}}, ParseProperties);
}

nlohmann::json QomGet(QmpClient& qmp, const std::string& path, const std::string& property) {
  return qmp.Execute("qom-get", {{"path", path}, {"property", property}});
}

std::vector<CpuInfo> QueryCpusFast(QmpClient& qmp) {
  return Run(qmp, "query-cpus-fast", nullptr, [](const nlohmann::json& r) {
    std::vector<CpuInfo> cpus;
    for (const auto& c : r) {
      cpus.push_back({c.at("cpu-index").get<int>(), c.at("qom-path").get<std::string>(),
                      c.value("thread-id", std::int64_t{0})});
    }
    return cpus;
  });
}

std::vector<QomType> QomListTypes(QmpClient& qmp, const std::string& implements, bool abstract) {
  nlohmann::json arguments = nlohmann::json::object();
  if (!implements.empty()) arguments["implements"] = implements;
  if (abstract) arguments["abstract"] = true;
  return Run(qmp, "qom-list-types", arguments, [](const nlohmann::json& r) {
    std::vector<QomType> types;
    for (const auto& t : r)
      types.push_back({t.at("name").get<std::string>(), t.value("parent", "")});
    return types;
  });
}

std::vector<QomProperty> DeviceListProperties(QmpClient& qmp, const std::string& type_name) {
  return Run(qmp, "device-list-properties", {{"typename", type_name}}, ParseProperties);
}

std::vector<QomProperty> QomListProperties(QmpClient& qmp, const std::string& type_name) {
  return Run(qmp, "qom-list-properties", {{"typename", type_name}}, ParseProperties);
}

std::vector<CommandLineOption> QueryCommandLineOptions(QmpClient& qmp, const std::string& option) {
  nlohmann::json arguments = nlohmann::json::object();
  if (!option.empty()) arguments["option"] = option;
  return Run(qmp, "query-command-line-options", arguments, [](const nlohmann::json& r) {
    std::vector<CommandLineOption> options;
    for (const auto& o : r) {
      CommandLineOption entry{o.at("option").get<std::string>(), {}};
      for (const auto& p : o.at("parameters")) entry.parameters.push_back(p.at("name"));
      options.push_back(std::move(entry));
    }
    return options;
  });
}

std::vector<MachineInfo> QueryMachines(QmpClient& qmp) {
  return Run(qmp, "query-machines", nullptr, [](const nlohmann::json& r) {
    std::vector<MachineInfo> machines;
    for (const auto& m : r) {
      machines.push_back({m.at("name").get<std::string>(), m.value("alias", ""),
                          m.value("is-default", false), m.value("cpu-max", 0)});
    }
    return machines;
  });
}

}  // namespace kvmrun

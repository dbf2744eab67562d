#include "kvmrun/qmp_commands.h"

#include <climits>

#include "qmp/json_fields.h"

namespace kvmrun {
namespace {

// Runs `command` and converts the reply with `parse`, which reads it through JsonFields; a
// reply of the wrong shape becomes a QmpProtocolError that names the command, the field and
// shows the reply.
template <typename Parse>
auto Run(QmpClient& qmp, const std::string& command, const nlohmann::json& arguments, Parse parse) {
  const nlohmann::json reply = qmp.Execute(command, arguments);
  try {
    return parse(reply, "the reply");
  } catch (const MalformedJson& e) {
    throw QmpProtocolError("unexpected reply to '" + command + "' (" + e.what() +
                           "): " + JsonExcerpt(reply));
  }
}

// The elements of an array reply, each an object.
template <typename Element>
auto EachObject(const nlohmann::json& reply, const std::string& where, Element element) {
  if (!reply.is_array()) throw MalformedJson(where, "", "expected an array");
  std::vector<decltype(element(std::declval<const JsonFields&>()))> out;
  out.reserve(reply.size());
  for (std::size_t i = 0; i < reply.size(); ++i) {
    out.push_back(element(JsonFields(reply[i], where + "[" + std::to_string(i) + "]")));
  }
  return out;
}

// Reads a reply with `parse`, as Run does, for a reply that came some other way (a batch).
template <typename Parse>
auto FromReply(const std::string& command, const nlohmann::json& reply, Parse parse) {
  try {
    return parse(reply, "the reply");
  } catch (const MalformedJson& e) {
    throw QmpProtocolError("unexpected reply to '" + command + "' (" + e.what() +
                           "): " + JsonExcerpt(reply));
  }
}

std::vector<QomProperty> ParseProperties(const nlohmann::json& reply, const std::string& where) {
  return EachObject(reply, where, [](const JsonFields& p) {
    QomProperty property{p.String("name"), p.StringOr("type", ""), std::nullopt};
    if (const nlohmann::json* value = p.Find("default-value")) property.default_value = *value;
    return property;
  });
}

}  // namespace

QemuVersionInfo QueryVersion(QmpClient& qmp) {
  return Run(qmp, "query-version", nullptr, [](const nlohmann::json& r, const std::string& where) {
    const JsonFields reply(r, where);
    return QemuVersionInfo{QemuVersionFromJson(reply.Required("qemu")),
                           reply.StringOr("package", "")};
  });
}

namespace {

KvmStatus ParseKvmStatus(const nlohmann::json& r, const std::string& where) {
  const JsonFields reply(r, where);
  return KvmStatus{reply.Bool("enabled"), reply.Bool("present")};
}

}  // namespace

KvmStatus QueryKvm(QmpClient& qmp) { return Run(qmp, "query-kvm", nullptr, ParseKvmStatus); }

KvmStatus KvmStatusFromReply(const nlohmann::json& reply) {
  return FromReply("query-kvm", reply, ParseKvmStatus);
}

VmStatus QueryStatus(QmpClient& qmp) {
  return Run(qmp, "query-status", nullptr, [](const nlohmann::json& r, const std::string& where) {
    const JsonFields reply(r, where);
    return VmStatus{reply.String("status"), reply.Bool("running")};
  });
}

std::vector<QomProperty> QomList(QmpClient& qmp, const std::string& path) {
  return Run(qmp, "qom-list", {{"path", path}}, ParseProperties);
}

std::vector<QomProperty> QomListFromReply(const nlohmann::json& reply) {
  return FromReply("qom-list", reply, ParseProperties);
}

nlohmann::json QomGet(QmpClient& qmp, const std::string& path, const std::string& property) {
  return qmp.Execute("qom-get", {{"path", path}, {"property", property}});
}

namespace {

std::vector<CpuInfo> ParseCpus(const nlohmann::json& r, const std::string& where) {
  return EachObject(r, where, [](const JsonFields& c) {
    return CpuInfo{static_cast<int>(c.Int("cpu-index", 0, INT_MAX)), c.String("qom-path"),
                   c.IntOr("thread-id", 0)};
  });
}

}  // namespace

std::vector<CpuInfo> QueryCpusFast(QmpClient& qmp) {
  return Run(qmp, "query-cpus-fast", nullptr, ParseCpus);
}

std::vector<CpuInfo> CpusFromReply(const nlohmann::json& reply) {
  return FromReply("query-cpus-fast", reply, ParseCpus);
}

std::vector<QomType> QomListTypes(QmpClient& qmp, const std::string& implements, bool abstract) {
  nlohmann::json arguments = nlohmann::json::object();
  if (!implements.empty()) arguments["implements"] = implements;
  if (abstract) arguments["abstract"] = true;
  return Run(qmp, "qom-list-types", arguments,
             [](const nlohmann::json& r, const std::string& where) {
               return EachObject(r, where, [](const JsonFields& t) {
                 return QomType{t.String("name"), t.StringOr("parent", "")};
               });
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
  return Run(qmp, "query-command-line-options", arguments,
             [](const nlohmann::json& r, const std::string& where) {
               return EachObject(r, where, [](const JsonFields& o) {
                 CommandLineOption entry{o.String("option"), {}};
                 const nlohmann::json& parameters = o.Required("parameters");
                 for (const JsonFields& p : EachObject(parameters, o.where() + ".parameters",
                                                       [](const JsonFields& f) { return f; })) {
                   entry.parameters.push_back(p.String("name"));
                 }
                 return entry;
               });
             });
}

std::vector<MachineInfo> QueryMachines(QmpClient& qmp) {
  return Run(qmp, "query-machines", nullptr, [](const nlohmann::json& r, const std::string& where) {
    return EachObject(r, where, [](const JsonFields& m) {
      return MachineInfo{m.String("name"), m.StringOr("alias", ""), m.BoolOr("is-default", false),
                         static_cast<int>(m.IntOr("cpu-max", 0, 0, INT_MAX))};
    });
  });
}

}  // namespace kvmrun

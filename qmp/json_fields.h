// Typed, checked access to JSON from outside: a QMP peer's reply, the guest agent's, a snapshot's
// header, a shard's results.json, a named VM's record. nlohmann's own accessors throw
// json::type_error (or assert) on a wrong shape; a peer that sends `"exited": "yes"` must get an
// error naming the field, never an abort. Every read goes through JsonFields or the As*
// functions here, and numbers are checked to be finite and in range.
//
//   const JsonFields status(reply, "guest-exec-status");
//   if (status.BoolOr("exited", false)) code = status.IntOr("exitcode", -1, INT32_MIN, INT32_MAX);
//
// Errors are MalformedJson, whose what() reads "<where>: field '<name>': <problem>".
#ifndef KVMRUN_QMP_JSON_FIELDS_H_
#define KVMRUN_QMP_JSON_FIELDS_H_

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvmrun/error.h"

namespace kvmrun {

// JSON from outside that does not have the shape its reader expects.
class MalformedJson : public Error {
 public:
  MalformedJson(const std::string& where, const std::string& field, const std::string& problem);
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

// A scalar read as a type, naming `what` (e.g. "guest-get-time's return") when it is not one.
std::string AsString(const nlohmann::json& value, const std::string& what);
bool AsBool(const nlohmann::json& value, const std::string& what);
std::int64_t AsInt(const nlohmann::json& value, const std::string& what,
                   std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                   std::int64_t max = std::numeric_limits<std::int64_t>::max());
std::uint64_t AsUint(const nlohmann::json& value, const std::string& what,
                     std::uint64_t max = std::numeric_limits<std::uint64_t>::max());
// A finite number (integer or not) within [min, max].
double AsNumber(const nlohmann::json& value, const std::string& what, double min, double max);

// One JSON object from outside, read field by field. Holds a reference: the JSON must outlive it.
class JsonFields {
 public:
  // Throws MalformedJson when `object` is not an object.
  JsonFields(const nlohmann::json& object, std::string where);

  bool Has(std::string_view key) const;
  // The field, or nullptr when absent (null counts as present).
  const nlohmann::json* Find(std::string_view key) const;
  // The field; throws MalformedJson when absent.
  const nlohmann::json& Required(std::string_view key) const;

  std::string String(std::string_view key) const;
  std::string StringOr(std::string_view key, std::string fallback) const;
  bool Bool(std::string_view key) const;
  bool BoolOr(std::string_view key, bool fallback) const;
  std::int64_t Int(std::string_view key,
                   std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                   std::int64_t max = std::numeric_limits<std::int64_t>::max()) const;
  std::int64_t IntOr(std::string_view key, std::int64_t fallback,
                     std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                     std::int64_t max = std::numeric_limits<std::int64_t>::max()) const;
  std::uint64_t Uint(std::string_view key,
                     std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) const;
  double Number(std::string_view key, double min, double max) const;
  double NumberOr(std::string_view key, double fallback, double min, double max) const;
  // A nested object, read the same way.
  JsonFields Object(std::string_view key) const;
  // An array's elements (absent: throws); each element is still unchecked JSON.
  const nlohmann::json::array_t& Array(std::string_view key) const;
  const nlohmann::json::array_t* ArrayOrNull(std::string_view key) const;
  std::vector<std::string> StringArray(std::string_view key) const;

  const std::string& where() const { return where_; }
  const nlohmann::json& json() const { return object_; }

 private:
  std::string What(std::string_view key) const;

  const nlohmann::json& object_;
  std::string where_;
};

}  // namespace kvmrun

#endif  // KVMRUN_QMP_JSON_FIELDS_H_

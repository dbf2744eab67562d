#include "qmp/json_fields.h"

#include <cmath>

namespace kvmrun {
namespace {

std::string TypeName(const nlohmann::json& value) {
  if (value.is_number_integer()) return "an integer";
  if (value.is_number_float()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_boolean()) return "a boolean";
  if (value.is_null()) return "null";
  if (value.is_array()) return "an array";
  return "an object";
}

[[noreturn]] void Wrong(const std::string& what, const std::string& expected,
                        const nlohmann::json& value) {
  throw MalformedJson(what, "", "expected " + expected + ", got " + TypeName(value));
}

std::string Range(double min, double max) {
  const auto text = [](double v) {
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  };
  return "a number from " + text(min) + " to " + text(max);
}

}  // namespace

MalformedJson::MalformedJson(const std::string& where, const std::string& field,
                             const std::string& problem)
    : Error(where + (field.empty() ? "" : ": field '" + field + "'") + ": " + problem),
      field_(field) {}

std::string AsString(const nlohmann::json& value, const std::string& what) {
  if (!value.is_string()) Wrong(what, "a string", value);
  return value.get_ref<const std::string&>();
}

bool AsBool(const nlohmann::json& value, const std::string& what) {
  if (!value.is_boolean()) Wrong(what, "true or false", value);
  return value.get<bool>();
}

std::int64_t AsInt(const nlohmann::json& value, const std::string& what, std::int64_t min,
                   std::int64_t max) {
  const std::string expected =
      "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (value.is_number_unsigned()) {
    const std::uint64_t v = value.get<std::uint64_t>();
    if (max < 0 || v > static_cast<std::uint64_t>(max)) {
      throw MalformedJson(what, "", "expected " + expected + ", got " + std::to_string(v));
    }
    return static_cast<std::int64_t>(v);
  }
  if (!value.is_number_integer()) Wrong(what, expected, value);
  const std::int64_t v = value.get<std::int64_t>();
  if (v < min || v > max) {
    throw MalformedJson(what, "", "expected " + expected + ", got " + std::to_string(v));
  }
  return v;
}

std::uint64_t AsUint(const nlohmann::json& value, const std::string& what, std::uint64_t max) {
  const std::string expected = "an integer from 0 to " + std::to_string(max);
  if (value.is_number_unsigned()) {
    const std::uint64_t v = value.get<std::uint64_t>();
    if (v > max)
      throw MalformedJson(what, "", "expected " + expected + ", got " + std::to_string(v));
    return v;
  }
  if (value.is_number_integer()) {
    const std::int64_t v = value.get<std::int64_t>();
    if (v >= 0 && static_cast<std::uint64_t>(v) <= max) return static_cast<std::uint64_t>(v);
    throw MalformedJson(what, "", "expected " + expected + ", got " + std::to_string(v));
  }
  Wrong(what, expected, value);
}

double AsNumber(const nlohmann::json& value, const std::string& what, double min, double max) {
  if (!value.is_number()) Wrong(what, Range(min, max), value);
  const double v = value.get<double>();
  if (!std::isfinite(v) || v < min || v > max) {
    throw MalformedJson(what, "", "expected " + Range(min, max) + ", got " + value.dump());
  }
  return v;
}

JsonFields::JsonFields(const nlohmann::json& object, std::string where)
    : object_(object), where_(std::move(where)) {
  if (!object_.is_object()) {
    throw MalformedJson(where_, "", "expected an object, got " + TypeName(object_));
  }
}

std::string JsonFields::What(std::string_view key) const {
  return where_ + ": field '" + std::string(key) + "'";
}

bool JsonFields::Has(std::string_view key) const { return Find(key) != nullptr; }

const nlohmann::json* JsonFields::Find(std::string_view key) const {
  const auto it = object_.find(key);
  return it == object_.end() ? nullptr : &*it;
}

const nlohmann::json& JsonFields::Required(std::string_view key) const {
  const nlohmann::json* value = Find(key);
  if (value == nullptr) throw MalformedJson(where_, std::string(key), "missing");
  return *value;
}

std::string JsonFields::String(std::string_view key) const {
  return AsString(Required(key), What(key));
}

std::string JsonFields::StringOr(std::string_view key, std::string fallback) const {
  const nlohmann::json* value = Find(key);
  return value == nullptr ? fallback : AsString(*value, What(key));
}

bool JsonFields::Bool(std::string_view key) const { return AsBool(Required(key), What(key)); }

bool JsonFields::BoolOr(std::string_view key, bool fallback) const {
  const nlohmann::json* value = Find(key);
  return value == nullptr ? fallback : AsBool(*value, What(key));
}

std::int64_t JsonFields::Int(std::string_view key, std::int64_t min, std::int64_t max) const {
  return AsInt(Required(key), What(key), min, max);
}

std::int64_t JsonFields::IntOr(std::string_view key, std::int64_t fallback, std::int64_t min,
                               std::int64_t max) const {
  const nlohmann::json* value = Find(key);
  return value == nullptr ? fallback : AsInt(*value, What(key), min, max);
}

std::uint64_t JsonFields::Uint(std::string_view key, std::uint64_t max) const {
  return AsUint(Required(key), What(key), max);
}

double JsonFields::Number(std::string_view key, double min, double max) const {
  return AsNumber(Required(key), What(key), min, max);
}

double JsonFields::NumberOr(std::string_view key, double fallback, double min, double max) const {
  const nlohmann::json* value = Find(key);
  return value == nullptr ? fallback : AsNumber(*value, What(key), min, max);
}

JsonFields JsonFields::Object(std::string_view key) const {
  return JsonFields(Required(key), What(key));
}

const nlohmann::json::array_t& JsonFields::Array(std::string_view key) const {
  const nlohmann::json& value = Required(key);
  if (!value.is_array()) Wrong(What(key), "an array", value);
  return value.get_ref<const nlohmann::json::array_t&>();
}

const nlohmann::json::array_t* JsonFields::ArrayOrNull(std::string_view key) const {
  return Has(key) ? &Array(key) : nullptr;
}

std::vector<std::string> JsonFields::StringArray(std::string_view key) const {
  std::vector<std::string> out;
  const auto& items = Array(key);
  out.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    out.push_back(AsString(items[i], What(key) + "[" + std::to_string(i) + "]"));
  }
  return out;
}

}  // namespace kvmrun

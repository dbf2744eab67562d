#include "kvmrun/boot_matrix.h"

#include <charconv>

#include "kvmrun/error.h"

namespace kvmrun {
namespace {

std::optional<int> ParseInt(std::string_view text) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// 64-bit FNV-1a, then SplitMix64's finalizer: FNV alone leaves the low bits of similar names
// (case-1, case-2) correlated, which a modulo by a small count would show.
std::uint64_t Mix(std::string_view text) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

}  // namespace

nlohmann::json ExpandBootMatrix(const nlohmann::json& suite) {
  if (suite.is_array()) return suite;
  if (!suite.is_object()) {
    throw UsageError("expected a JSON array of cases, or an object with \"cases\" and \"matrix\"");
  }
  for (const auto& [key, value] : suite.items()) {
    if (key != "cases" && key != "matrix") {
      throw UsageError("unknown top-level key '" + key + "'; valid: cases, matrix");
    }
  }
  if (!suite.contains("cases") || !suite["cases"].is_array() || suite["cases"].empty()) {
    throw UsageError("\"cases\" must be a non-empty array of cases");
  }
  const nlohmann::json matrix = suite.value("matrix", nlohmann::json::object());
  if (!matrix.is_object()) throw UsageError("\"matrix\" must be an object of axes");
  for (const auto& [axis, values] : matrix.items()) {
    if (axis == "name" || !values.is_array() || values.empty() ||
        !std::all_of(values.begin(), values.end(),
                     [](const nlohmann::json& v) { return v.is_string(); })) {
      throw UsageError("matrix axis '" + axis +
                       "' must be a case field (not name) with a non-empty array of strings");
    }
  }
  nlohmann::json expanded = nlohmann::json::array();
  std::size_t number = 0;
  for (const nlohmann::json& entry : suite["cases"]) {
    ++number;
    if (!entry.is_object()) {
      throw UsageError("case " + std::to_string(number) + ": each case must be a JSON object");
    }
    const std::string base = entry.value("name", "case-" + std::to_string(number));
    for (const auto& [axis, values] : matrix.items()) {
      if (entry.contains(axis)) {
        throw UsageError("case '" + base + "' sets '" + axis + "', which is a matrix axis");
      }
    }
    // Every combination, the last axis varying fastest (an odometer over the axes).
    std::vector<std::size_t> at(matrix.size(), 0);
    while (true) {
      nlohmann::json c = entry;
      std::string suffix;
      std::size_t i = 0;
      for (const auto& [axis, values] : matrix.items()) {
        const std::string& value = values[at[i++]].get_ref<const std::string&>();
        c[axis] = value;
        suffix += (suffix.empty() ? "" : ",") + axis + "=" + value;
      }
      c["name"] = matrix.empty() ? base : base + "[" + suffix + "]";
      expanded.push_back(std::move(c));
      std::size_t axis = at.size();
      const auto sizes = [&](std::size_t k) {
        auto it = matrix.begin();
        std::advance(it, static_cast<std::ptrdiff_t>(k));
        return it->size();
      };
      while (axis > 0 && ++at[axis - 1] == sizes(axis - 1)) at[--axis] = 0;
      if (axis == 0) break;
    }
  }
  return expanded;
}

std::string ToString(const Shard& shard) {
  return std::to_string(shard.index) + "/" + std::to_string(shard.count);
}

Shard ParseShard(std::string_view text, std::string_view field) {
  const auto bad = [&](const std::string& why) {
    return UsageError(std::string(field), "invalid value '" + std::string(text) + "' (" + why +
                                              "); valid: I/N with 1 <= I <= N <= " +
                                              std::to_string(kMaxShards) + ", or auto");
  };
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) throw bad("no '/'");
  const auto index = ParseInt(text.substr(0, slash));
  const auto count = ParseInt(text.substr(slash + 1));
  if (!index || !count) throw bad("not two whole numbers");
  if (*count < 1 || *count > kMaxShards) throw bad("N out of range");
  if (*index < 1 || *index > *count) throw bad("I out of range: shards count from 1");
  return {*index, *count};
}

Shard ShardFromEnvironment(const EnvLookup& getenv, std::optional<int> count) {
  const auto number = [&](const char* name) -> std::optional<int> {
    const char* value = getenv(name);
    if (value == nullptr || *value == '\0') return std::nullopt;
    const auto parsed = ParseInt(value);
    if (!parsed) {
      throw UsageError("shard", "$" + std::string(name) + " is '" + value + "', not a number");
    }
    return parsed;
  };
  const auto checked = [&](int index, int total, const std::string& from) {
    if (total < 1 || total > kMaxShards || index < 1 || index > total) {
      throw UsageError("shard", from + " gives shard " + std::to_string(index) + "/" +
                                    std::to_string(total) + ", which does not exist");
    }
    return Shard{index, total};
  };
  if (const auto task = number("SLURM_ARRAY_TASK_ID")) {
    const auto total = number("SLURM_ARRAY_TASK_COUNT");
    if (!total)
      throw UsageError("shard", "$SLURM_ARRAY_TASK_ID is set without $SLURM_ARRAY_TASK_COUNT");
    const int min = number("SLURM_ARRAY_TASK_MIN").value_or(0);
    return checked(*task - min + 1, count.value_or(*total),
                   "Slurm (task " + std::to_string(*task) + " from " + std::to_string(min) + ")");
  }
  if (const auto index = number("JOB_COMPLETION_INDEX")) {
    if (!count) {
      throw UsageError("shard",
                       "$JOB_COMPLETION_INDEX is set, but Kubernetes does not say how many "
                       "completions there are: give the shard count (the Job's completions)");
    }
    return checked(*index + 1, *count, "Kubernetes ($JOB_COMPLETION_INDEX)");
  }
  if (const auto index = number("CI_NODE_INDEX")) {
    const auto total = number("CI_NODE_TOTAL");
    if (!total) throw UsageError("shard", "$CI_NODE_INDEX is set without $CI_NODE_TOTAL");
    return checked(*index, count.value_or(*total), "GitLab ($CI_NODE_INDEX)");
  }
  throw UsageError("shard",
                   "auto: none of the engines' variables is set ($SLURM_ARRAY_TASK_ID, "
                   "$JOB_COMPLETION_INDEX, $CI_NODE_INDEX); give the shard as I/N");
}

int ShardOfCase(std::string_view name, int count) {
  return static_cast<int>(Mix(name) % static_cast<std::uint64_t>(count)) + 1;
}

}  // namespace kvmrun

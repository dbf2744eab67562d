// Boot-test suites beyond one host: a matrix of cases written once, and a deterministic split
// of it into shards that Slurm array tasks, Kubernetes Indexed Jobs or CI matrix jobs run, one
// shard each (docs/scale-out.md). Pure, except ShardFromEnvironment's lookup.
//
// A suite file is a JSON array of cases (boot_case.h), or an object
//   {"matrix": {"os": ["linux", "windows-11"], "qemu": ["/usr/bin/qemu-system-x86_64"]},
//    "cases": [{"name": "smoke", "kernel": "bzImage", "expect": "login:"}]}
// whose every case is run with every combination of the axes' values, named
// "smoke[os=linux,qemu=/usr/bin/qemu-system-x86_64]" (axes in name order). An axis is any case
// field that takes a string (os, kernel, initrd, append, memory, qemu, firmware, expect).
#ifndef KVMRUN_BOOT_MATRIX_H_
#define KVMRUN_BOOT_MATRIX_H_

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvmrun {

// The cases of a suite file, each matrix case expanded: a JSON array of case objects, each
// with its name. An array is returned as it is. Throws UsageError for an axis that is not a
// non-empty array of strings, an axis a case also sets, or an unknown top-level key.
nlohmann::json ExpandBootMatrix(const nlohmann::json& suite);

// Shard `index` of `count`, 1-based as people count ("--shard 2/4"): 1 <= index <= count.
struct Shard {
  int index = 1;
  int count = 1;
  friend bool operator==(const Shard&, const Shard&) = default;
};
inline constexpr int kMaxShards = 4096;
std::string ToString(const Shard& shard);  // "2/4"

// Parses "I/N". Throws UsageError naming `field`, the value and the valid form.
Shard ParseShard(std::string_view text, std::string_view field = "shard");

// The shard the scheduling engine says this process runs (--shard auto), from its variables:
//   Slurm job arrays   SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT
//   Kubernetes         JOB_COMPLETION_INDEX (0-based); the count is `count` (the Job's
//                      completions), which Kubernetes does not put in the environment
//   GitLab parallel    CI_NODE_INDEX (1-based), CI_NODE_TOTAL
// `getenv` looks a variable up (nullptr when unset). Throws UsageError naming the variables
// when none of the engines' are set, or they are out of range.
using EnvLookup = std::function<const char*(const char*)>;
Shard ShardFromEnvironment(const EnvLookup& getenv, std::optional<int> count);

// The shard (1-based) a case belongs to among `count`: a hash of its name alone, so a case
// keeps its shard when others are added or removed, and every process agrees without talking.
int ShardOfCase(std::string_view name, int count);

}  // namespace kvmrun

#endif  // KVMRUN_BOOT_MATRIX_H_

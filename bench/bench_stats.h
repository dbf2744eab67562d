// What the benchmark programs share: a clock, and medians of repeated runs.
#ifndef KVMRUN_BENCH_BENCH_STATS_H_
#define KVMRUN_BENCH_BENCH_STATS_H_

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kvmrun::bench {

using Clock = std::chrono::steady_clock;

inline double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Stats {
  double median = 0, min = 0, max = 0;
  std::size_t n = 0;
};

inline Stats Summarize(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = v.size();
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  return s;
}

inline nlohmann::json StatsJson(const Stats& s, const std::string& unit) {
  return {{"median", s.median}, {"min", s.min}, {"max", s.max}, {"runs", s.n}, {"unit", unit}};
}

}  // namespace kvmrun::bench

#endif  // KVMRUN_BENCH_BENCH_STATS_H_

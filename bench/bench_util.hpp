#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

// What every benchmark here measures with.
namespace townhall::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The p-quantile (0..1) of `values`, nearest rank.
inline double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<std::size_t>(p * static_cast<double>(values.size())))];
}

}  // namespace townhall::bench

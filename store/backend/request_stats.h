// What a backend's requests cost, per kind of I/O (io_kind.h): counts, bytes, retries,
// failures and a latency histogram. Object-store backends keep these; `stats` shows them.
#pragma once

#include <array>
#include <cstdint>

#include "store/backend/io_kind.h"

namespace lm {

// Latency histogram: bucket i holds requests that took < kLatencyBoundsMs[i] ms.
constexpr std::array<double, 16> kLatencyBoundsMs = {1, 2, 5, 10, 20, 50, 100, 200, 500,
                                                     1000, 2000, 5000, 10000, 30000, 60000, 1e12};

struct KindStats {
  uint64_t requests = 0, gets = 0, bytes_in = 0, bytes_out = 0, retries = 0, failures = 0;
  std::array<uint64_t, kLatencyBoundsMs.size()> latency{};
  void AddLatency(double ms);
  // An upper bound of the q-quantile (0..1) of request latency, in ms (0 if none).
  double PercentileMs(double q) const;
};

struct RequestStats {
  std::array<KindStats, kIoKinds> kinds;
};

}  // namespace lm

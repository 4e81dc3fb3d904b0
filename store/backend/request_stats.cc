#include "store/backend/request_stats.h"

#include <cmath>

namespace lm {

void KindStats::AddLatency(double ms) {
  size_t i = 0;
  while (i + 1 < kLatencyBoundsMs.size() && ms >= kLatencyBoundsMs[i]) i++;
  latency[i]++;
}

double KindStats::PercentileMs(double q) const {
  uint64_t total = 0;
  for (uint64_t n : latency) total += n;
  if (total == 0) return 0;
  uint64_t want = std::max<uint64_t>(1, uint64_t(std::ceil(q * double(total))));
  uint64_t seen = 0;
  for (size_t i = 0; i < latency.size(); i++) {
    seen += latency[i];
    if (seen >= want) return kLatencyBoundsMs[i];
  }
  return kLatencyBoundsMs.back();
}

}  // namespace lm

// LatencyHistogram: a lock-free histogram of durations with fixed bucket bounds, cheap
// enough for every FUSE read and every repository read. Its snapshot is what a Prometheus
// histogram exposes (cumulative `le` buckets, a sum and a count).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace lm {

class LatencyHistogram {
 public:
  // Upper bounds in seconds, from 50 µs (a cache hit) to 10 s (a retried object-store GET);
  // one more bucket (+Inf) takes the rest.
  static constexpr std::array<double, 16> kBoundsSeconds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                            0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                                            0.5,     1,      2.5,     10};
  static constexpr size_t kBuckets = kBoundsSeconds.size() + 1;

  void Observe(std::chrono::nanoseconds d) {
    double s = std::chrono::duration<double>(d).count();
    size_t i = 0;
    while (i < kBoundsSeconds.size() && s > kBoundsSeconds[i]) i++;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<uint64_t>(d.count() < 0 ? 0 : d.count()), std::memory_order_relaxed);
  }

  struct Snapshot {
    std::array<uint64_t, kBuckets> counts{};  // per bucket, not cumulative
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  Snapshot Read() const {
    Snapshot s;
    for (size_t i = 0; i < kBuckets; i++) {
      s.counts[i] = counts_[i].load(std::memory_order_relaxed);
      s.count += s.counts[i];
    }
    s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    return s;
  }

 private:
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
  std::atomic<uint64_t> sum_ns_{0};
};

// Observes the time from construction to destruction.
class ScopedLatency {
 public:
  explicit ScopedLatency(LatencyHistogram& h) : h_(h), start_(std::chrono::steady_clock::now()) {}
  ~ScopedLatency() { h_.Observe(std::chrono::steady_clock::now() - start_); }
  ScopedLatency(const ScopedLatency&) = delete;
  ScopedLatency& operator=(const ScopedLatency&) = delete;

 private:
  LatencyHistogram& h_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace lm

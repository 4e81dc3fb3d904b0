// The media agent's metrics in the Prometheus text exposition format (version 0.0.4), as
// the Prometheus client libraries name them: counters end in `_total`, sizes in `_bytes`,
// durations are `_seconds` histograms; per backup copy the labels are `vm` and `backup`.
// AgentControl fills a MetricsSnapshot (agent_control.cc); RenderMetrics only formats it,
// so the format is tested on its own (test/agent/metrics_test.cc, and `promtool check
// metrics` in test/integration/metrics.sh).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/histogram.h"
#include "store/backend/io_kind.h"

namespace lm {

struct CopyMetrics {
  std::string vm, backup;
  uint64_t reads = 0, read_bytes = 0, writes = 0, written_bytes = 0;
  int64_t open_files = 0;
  uint64_t overlay_bytes = 0, overlay_files = 0;
  uint64_t prestage_remaining_bytes = 0, hydration_remaining_bytes = 0;
  int64_t expires_unix = 0;  // 0: no expiry policy
};

struct MetricsSnapshot {
  // Read-cache.
  uint64_t cache_hits = 0, cache_misses = 0, cache_evictions = 0, cache_inserts = 0, cache_damaged = 0,
           cache_served_bytes = 0, cache_used_bytes = 0, cache_capacity_bytes = 0, cache_chunks = 0,
           cache_pinned_chunks = 0;
  // Repository reads, by kind of I/O (guest, prestage, hydrate (also read-ahead), other).
  std::array<uint64_t, kIoKinds> fetched_chunks{}, fetched_bytes{};
  uint64_t fetch_errors = 0;
  LatencyHistogram::Snapshot repository_read_latency;
  // Guests.
  uint64_t guest_read_errors = 0;
  LatencyHistogram::Snapshot guest_read_latency;
  // Pre-staging and hydration.
  uint64_t prestage_chunks = 0, prestage_bytes = 0, prestage_running = 0;
  // Object-store requests by kind (empty for a repository in a directory).
  struct Requests {
    uint64_t requests = 0, retries = 0, failures = 0;
  };
  std::map<std::string, Requests> object_store;
  bool nfs_export_configured = false, nfs_export_up = false;
  std::vector<CopyMetrics> copies;
};

std::string RenderMetrics(const MetricsSnapshot& m);

// A label value as the format writes it between quotes (\\, \" and \n escaped).
std::string EscapeLabelValue(const std::string& v);

}  // namespace lm

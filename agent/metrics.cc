#include "agent/metrics.h"

#include <fmt/format.h>

namespace lm {

namespace {

// Writes one metric family at a time: its HELP and TYPE lines, then its samples.
class Exposition {
 public:
  void Family(const std::string& name, const char* type, const std::string& help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void Sample(const std::string& name, const std::string& labels, double v) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += fmt::format(" {}\n", v);
  }
  void Sample(const std::string& name, const std::string& labels, uint64_t v) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += fmt::format(" {}\n", v);
  }
  void Single(const std::string& name, const char* type, const std::string& help, uint64_t v) {
    Family(name, type, help);
    Sample(name, "", v);
  }
  void Histogram(const std::string& name, const std::string& help, const LatencyHistogram::Snapshot& h) {
    Family(name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < LatencyHistogram::kBoundsSeconds.size(); i++) {
      cumulative += h.counts[i];
      Sample(name + "_bucket", fmt::format("le=\"{}\"", LatencyHistogram::kBoundsSeconds[i]), cumulative);
    }
    Sample(name + "_bucket", "le=\"+Inf\"", h.count);
    Sample(name + "_sum", "", h.sum_seconds);
    Sample(name + "_count", "", h.count);
  }
  // One sample per backup copy.
  template <typename F>
  void PerCopy(const std::string& name, const char* type, const std::string& help,
               const std::vector<CopyMetrics>& copies, F value) {
    Family(name, type, help);
    for (const CopyMetrics& c : copies) {
      Sample(name, fmt::format("vm=\"{}\",backup=\"{}\"", EscapeLabelValue(c.vm), EscapeLabelValue(c.backup)),
             static_cast<uint64_t>(value(c)));
    }
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string RenderMetrics(const MetricsSnapshot& m) {
  Exposition e;
  e.Single("livemount_cache_hits_total", "counter", "Chunk reads served by the read-cache.", m.cache_hits);
  e.Single("livemount_cache_misses_total", "counter", "Chunk reads the read-cache did not hold.", m.cache_misses);
  e.Single("livemount_cache_evictions_total", "counter", "Chunks evicted from the read-cache to make room.",
           m.cache_evictions);
  e.Single("livemount_cache_inserts_total", "counter", "Chunks inserted into the read-cache.", m.cache_inserts);
  e.Single("livemount_cache_damaged_dropped_total", "counter",
           "Read-cache entries dropped because their checksum did not match (fetched again).", m.cache_damaged);
  e.Single("livemount_cache_served_bytes_total", "counter", "Bytes served from the read-cache.",
           m.cache_served_bytes);
  e.Single("livemount_cache_used_bytes", "gauge", "Bytes the read-cache holds.", m.cache_used_bytes);
  e.Single("livemount_cache_capacity_bytes", "gauge", "The read-cache's capacity.", m.cache_capacity_bytes);
  e.Single("livemount_cache_chunks", "gauge", "Chunks the read-cache holds.", m.cache_chunks);
  e.Single("livemount_cache_pinned_chunks", "gauge", "Chunks pinned by pre-staging (never evicted).",
           m.cache_pinned_chunks);

  e.Family("livemount_repository_fetched_chunks_total", "counter",
           "Chunks read from the repository, by kind of I/O (hydrate includes read-ahead).");
  for (int k = 0; k < kIoKinds; k++) {
    e.Sample("livemount_repository_fetched_chunks_total", fmt::format("kind=\"{}\"", IoKindName(IoKind(k))),
             m.fetched_chunks[k]);
  }
  e.Family("livemount_repository_fetched_bytes_total", "counter",
           "Bytes read from the repository (as stored), by kind of I/O.");
  for (int k = 0; k < kIoKinds; k++) {
    e.Sample("livemount_repository_fetched_bytes_total", fmt::format("kind=\"{}\"", IoKindName(IoKind(k))),
             m.fetched_bytes[k]);
  }
  e.Single("livemount_repository_fetch_errors_total", "counter",
           "Chunks that could not be read from the repository (missing, damaged, unreachable).", m.fetch_errors);
  e.Histogram("livemount_repository_read_duration_seconds",
              "Time of each ranged read of a pack in the repository.", m.repository_read_latency);
  if (!m.object_store.empty()) {
    e.Family("livemount_object_store_requests_total", "counter", "Object-store requests, by kind of I/O.");
    for (auto& [kind, r] : m.object_store) {
      e.Sample("livemount_object_store_requests_total", fmt::format("kind=\"{}\"", EscapeLabelValue(kind)),
               r.requests);
    }
    e.Family("livemount_object_store_retries_total", "counter", "Object-store requests retried, by kind of I/O.");
    for (auto& [kind, r] : m.object_store) {
      e.Sample("livemount_object_store_retries_total", fmt::format("kind=\"{}\"", EscapeLabelValue(kind)),
               r.retries);
    }
    e.Family("livemount_object_store_failures_total", "counter",
             "Object-store requests that failed after their retries, by kind of I/O.");
    for (auto& [kind, r] : m.object_store) {
      e.Sample("livemount_object_store_failures_total", fmt::format("kind=\"{}\"", EscapeLabelValue(kind)),
               r.failures);
    }
  }

  e.Histogram("livemount_guest_read_duration_seconds", "Time the media agent took to serve each guest read.",
              m.guest_read_latency);
  e.Single("livemount_guest_read_errors_total", "counter", "Guest reads answered with an error (EIO).",
           m.guest_read_errors);
  e.PerCopy("livemount_guest_reads_total", "counter", "Guest read requests.", m.copies,
            [](const CopyMetrics& c) { return c.reads; });
  e.PerCopy("livemount_guest_read_bytes_total", "counter", "Bytes guests read.", m.copies,
            [](const CopyMetrics& c) { return c.read_bytes; });
  e.PerCopy("livemount_guest_writes_total", "counter", "Guest write requests (into the overlay).", m.copies,
            [](const CopyMetrics& c) { return c.writes; });
  e.PerCopy("livemount_guest_written_bytes_total", "counter", "Bytes guests wrote (into the overlay).", m.copies,
            [](const CopyMetrics& c) { return c.written_bytes; });
  e.PerCopy("livemount_open_files", "gauge", "Files of the backup copy open now.", m.copies,
            [](const CopyMetrics& c) { return c.open_files; });
  e.PerCopy("livemount_overlay_bytes", "gauge", "Bytes the backup copy's overlay takes on the local disk.", m.copies,
            [](const CopyMetrics& c) { return c.overlay_bytes; });
  e.PerCopy("livemount_overlay_files", "gauge", "Changed paths in the backup copy's overlay.", m.copies,
            [](const CopyMetrics& c) { return c.overlay_files; });

  e.Single("livemount_prestage_chunks_total", "counter", "Chunks pre-staged into the read-cache.", m.prestage_chunks);
  e.Single("livemount_prestage_bytes_total", "counter", "Bytes pre-staged into the read-cache.", m.prestage_bytes);
  e.Single("livemount_prestage_running", "gauge", "Pre-stagings running now.", m.prestage_running);
  e.PerCopy("livemount_prestage_remaining_bytes", "gauge", "Bytes a running pre-staging has yet to copy.", m.copies,
            [](const CopyMetrics& c) { return c.prestage_remaining_bytes; });
  e.PerCopy("livemount_hydration_remaining_bytes", "gauge",
            "Bytes a running hydration (prestage --all, mount --hydrate) has yet to copy.", m.copies,
            [](const CopyMetrics& c) { return c.hydration_remaining_bytes; });
  e.PerCopy("livemount_expiry_timestamp_seconds", "gauge",
            "When the backup copy's overlay is discarded by its expiry policy (unix time; 0: never).", m.copies,
            [](const CopyMetrics& c) { return c.expires_unix < 0 ? 0 : c.expires_unix; });

  e.Single("livemount_nfs_export_configured", "gauge", "1 if this media agent serves its mount over NFS.",
           m.nfs_export_configured ? 1 : 0);
  e.Single("livemount_nfs_export_up", "gauge", "1 if the NFS export (nfs-ganesha) is running.",
           m.nfs_export_up ? 1 : 0);
  return e.Take();
}

}  // namespace lm

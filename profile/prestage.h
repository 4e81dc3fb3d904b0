// The pre-stager: copies the chunks a profile names, in profile (boot) order, from the
// repository into the read-cache, so a boot finds them local. It streams the profile window
// by window, each fetch one ranged read of neighbouring chunks, many in flight; a guest
// miss meanwhile is fetched at once beside them, or joins the fetch already bringing it.
// `all` goes on with every other chunk of the backup copy afterwards (hydration), which
// yields to guest reads.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "cache/chunk_source.h"
#include "profile/profile.h"
#include "store/repository.h"

namespace lm {

struct PrestageOptions {
  unsigned threads = 8;  // fetches in flight: an object store is latency-bound
  bool all = false;
  int64_t pin_until = 0;  // unix seconds; 0: no pin
  bool pin_session = false;  // pin until the owning process (the mount) ends
  std::atomic<uint64_t>* staged_chunks = nullptr;  // counters to add to as fetches end
  std::atomic<uint64_t>* staged_bytes = nullptr;   // (a mount's stats)
  // What is left to do (added when the plan is made, taken off as fetches end): a mount's
  // stats show the bytes remaining and, from the rate so far, the time left.
  std::atomic<uint64_t>* remaining_chunks = nullptr;
  std::atomic<uint64_t>* remaining_bytes = nullptr;
  // The same bytes of this pre-staging alone, split into the profile's part and the
  // hydration's (`all`): a mount's metrics per backup copy.
  std::atomic<uint64_t>* profile_remaining_bytes = nullptr;
  std::atomic<uint64_t>* hydrate_remaining_bytes = nullptr;
  // With a session pin: the digests pinned (each once), so that they can be unpinned later.
  std::vector<Digest>* pinned = nullptr;
  const std::atomic<bool>* cancel = nullptr;  // set: stop soon (the mount is ending)
  std::function<void(uint64_t done, uint64_t total)> progress;  // chunks
};

struct PrestageSummary {
  uint64_t profile_chunks = 0;  // distinct non-zero chunks the profile names
  uint64_t total_chunks = 0;    // with `all`: every distinct non-zero chunk staged
  uint64_t already_cached = 0, fetched = 0, failed = 0;
  uint64_t bytes_fetched = 0;   // decompressed bytes brought into the cache
  uint64_t missing_files = 0;   // profile entries naming files this backup lacks
  double seconds = 0;
};

// The profile's chunks of one backup copy, in order, without duplicates or zero chunks.
Result<std::vector<Digest>> ProfileChunks(Repository& repo, const BackupRef& b, const Profile& p,
                                          bool all, uint64_t* profile_chunks, uint64_t* missing);

Result<PrestageSummary> Prestage(Repository& repo, ChunkSource& source, const BackupRef& b, const Profile& p,
                                 const PrestageOptions& options);

}  // namespace lm

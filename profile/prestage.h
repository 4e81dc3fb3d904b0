// The pre-stager: copies the chunks a profile names, in profile order, from the repository
// into the read-cache, with parallel fetches, so a boot finds them local. `all` goes on with
// every other chunk of the backup copy afterwards (hydration).
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "cache/chunk_source.h"
#include "profile/profile.h"
#include "store/repository.h"

namespace lm {

struct PrestageOptions {
  unsigned threads = 4;
  bool all = false;
  int64_t pin_until = 0;  // unix seconds; 0: no pin
  bool pin_session = false;  // pin until the owning process (the mount) ends
  std::atomic<uint64_t>* staged_chunks = nullptr;  // counters to add to (a mount's stats)
  std::atomic<uint64_t>* staged_bytes = nullptr;
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

// Repository statistics (`livemount stats REPO [VM]`): what the copies hold, what dedup
// and compression save, what prune would reclaim, how full the packs are.
//
// Sizes: "logical" is the files' sizes as backed up; "raw" the bytes of distinct non-zero
// chunks before compression; "stored" the same chunks as they sit in packs (compressed,
// with their record headers). A chunk is "unique" to a copy when no other copy uses it
// (what forgetting that copy alone would let prune reclaim) and "shared" otherwise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/repository.h"

namespace lm {

struct CopyStats {
  std::string vm, id;
  uint64_t files = 0, logical_bytes = 0;
  uint64_t chunks = 0;                           // distinct non-zero chunks it uses
  uint64_t unique_stored = 0, shared_stored = 0;  // of those, by whether other copies use them
};

struct RepoStats {
  std::vector<CopyStats> copies;  // per VM, oldest first
  uint64_t logical_bytes = 0;     // all copies
  uint64_t chunks = 0, raw_bytes = 0, stored_bytes = 0;  // distinct chunks the copies use
  uint64_t unreferenced_chunks = 0, unreferenced_bytes = 0;  // in the index, used by none
  uint64_t packs = 0, pack_bytes = 0;
  double min_pack_fill = 1, mean_pack_fill = 1;  // used record bytes / pack size
  double dedup_ratio() const { return raw_bytes ? double(logical_bytes) / double(raw_bytes) : 0; }
  double compression_ratio() const { return stored_bytes ? double(raw_bytes) / double(stored_bytes) : 0; }
  // Pack bytes that hold no used chunk, nor its table entry, nor a pack's header and footer
  // (prune with --max-unused 0% returns about this).
  uint64_t reclaimable() const {
    uint64_t needed = stored_bytes + packs * (kPackHeaderSize + kPackFooterSize) + chunks * kPackEntrySize;
    return pack_bytes > needed ? pack_bytes - needed : 0;
  }
};

// `vm` "" for every VM; the chunk and pack figures always cover the whole repository.
Result<RepoStats> CollectRepoStats(Repository& repo, const std::string& vm = "");

}  // namespace lm

// The repository's chunk index: digest -> (pack, offset, lengths). In the repository it is a
// set of immutable index objects (index/<id>.idx), each written after the packs it names are
// durable; locally a ChunkTable merges them all (in memory, or on disk for large
// repositories: store/chunk_table.h). Readers load what is new when they meet a digest they
// do not know, so a mount sees backups that finished after it started.
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "store/backend/backend.h"
#include "store/chunk_table.h"
#include "store/crypto/repo_crypto.h"
#include "store/digest.h"
#include "store/pack.h"

namespace lm {

inline constexpr char kIndexMagic[8] = {'L', 'M', 'I', 'N', 'D', 'X', '0', '1'};

std::string EncodeIndexFile(const IndexFileContents& c);
// `path` is used in error messages only.
Result<IndexFileContents> DecodeIndexFile(std::string_view data, const std::string& path);

// A new index object's name, "index/<16 hex: time in ns, big-endian><16 hex random>.idx":
// names grow with their writer's clock, so a reader lists only what came after the newest
// it knows (an index id is still 32 hex characters, as before).
std::string NewIndexName(int64_t now_ns);
// The time of such a name, or 0 for one that does not look like one (older random ids,
// times before 2020 or more than a day after `now_ns`).
int64_t IndexNameTime(const std::string& name, int64_t now_ns);

// Thread-safe: lookups and loads run at once; a rebuild swaps the table under an exclusive lock.
class ChunkIndex {
 public:
  static constexpr size_t kLoadThreads = 8;  // index objects read at once
  ChunkIndex();  // in memory until Use()
  // Keeps the index in `table` from now on, with what it already holds (an on-disk table
  // from an earlier run). Call before the first load.
  void Use(std::unique_ptr<ChunkTable> table);
  // Reads the index objects (index/*.idx) that are not loaded yet. A corrupt one is skipped
  // and remembered in BadFiles() (the repository then reads its packs' own tables);
  // *found_bad says whether this call met a new one. *gone says whether a loaded object is
  // no longer there (a prune replaced it): the table then names chunks that may be gone,
  // and must be rebuilt (Reload) before anything relies on what it does not find missing.
  // Index objects are sealed in an encrypted repository: `crypto` opens them.
  Status LoadNew(Backend& backend, const RepoCrypto& crypto, bool* found_bad = nullptr, bool* gone = nullptr);
  // The same for the index objects named after the newest one loaded, less an hour for
  // writers whose clocks lag (one short listing on an object store). It may miss an object
  // of a writer whose clock lags more: a reader that still lacks a digest calls LoadNew.
  Status LoadNewest(Backend& backend, const RepoCrypto& crypto, int64_t now_ns, bool* found_bad = nullptr);
  // Loads these index objects (not loaded yet) without listing: a media agent's local
  // copies, so it starts without asking the store what there is.
  Status LoadNamed(Backend& backend, const RepoCrypto& crypto, const std::vector<ObjectInfo>& objects,
                   bool* found_bad = nullptr);
  // Rebuilds the index from the index objects there are now (after prune replaced some),
  // in a new generation of the table; lookups use the old one until it is complete.
  Status Reload(Backend& backend, const RepoCrypto& crypto, bool* found_bad = nullptr);
  std::vector<std::string> BadFiles() const;  // "path: what is wrong"
  bool HasPack(const PackId& id) const;
  // A pack's own table (named "packs/<id>" among the sources), or an index object a backup
  // just wrote (by its name).
  Status Add(const std::string& source, const IndexFileContents& contents);
  bool Find(const Digest& d, ChunkLocation* loc, PackId* pack) const;
  bool Contains(const Digest& d) const;
  size_t size() const;
  // Each digest once with one of its locations (for verify, prune, stats); fn must not
  // add to the index. Stops when fn returns false.
  void ForEach(const std::function<bool(const PackId&, const PackEntry&)>& fn) const;
  std::vector<std::pair<PackId, PackEntry>> AllEntries() const;  // ForEach, collected
  std::string Describe() const;  // where the table lives

 private:
  Status LoadListed(Backend& backend, const RepoCrypto& crypto, const std::vector<ObjectInfo>& objects,
                    int64_t now_ns, bool* found_bad);
  mutable std::shared_mutex mu_;  // guards the table pointer and newest_name_ns_
  std::unique_ptr<ChunkTable> table_;
  int64_t newest_name_ns_ = 0;  // the latest time among loaded names (IndexNameTime)
};

}  // namespace lm

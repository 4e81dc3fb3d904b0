// The repository's chunk index: digest -> (pack, offset, lengths). In the repository it is a
// set of immutable index objects (index/<id>.idx), each written after the packs it names are
// durable; in memory one hash table merges them all. Readers reload it when they meet a
// digest they do not know, so a mount sees backups that finished after it started.
#pragma once

#include <cstdint>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/digest.h"
#include "store/backend/backend.h"
#include "store/crypto/repo_crypto.h"
#include "store/pack.h"

namespace lm {

inline constexpr char kIndexMagic[8] = {'L', 'M', 'I', 'N', 'D', 'X', '0', '1'};

struct ChunkLocation {
  uint32_t pack_no = 0;  // into ChunkIndex's pack table
  uint32_t stored_len = 0;
  uint32_t raw_len = 0;
  Codec codec = Codec::kNone;
  uint64_t offset = 0;
};

// One index file's worth of entries, grouped by pack.
struct IndexFileContents {
  std::vector<std::pair<PackId, std::vector<PackEntry>>> packs;
};

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

// Thread-safe: lookups take a shared lock, loading an exclusive one.
class ChunkIndex {
 public:
  static constexpr size_t kLoadThreads = 8;  // index objects read at once
  // Reads the index objects (index/*.idx) that are not loaded yet. A corrupt one is skipped
  // and remembered in BadFiles() (the repository then reads its packs' own tables);
  // *found_bad says whether this call met a new one.
  // Index objects are sealed in an encrypted repository: `crypto` opens them.
  Status LoadNew(Backend& backend, const RepoCrypto& crypto, bool* found_bad = nullptr);
  // The same for the index objects named after the newest one loaded, less an hour for
  // writers whose clocks lag (one short listing on an object store). It may miss an object
  // of a writer whose clock lags more: a reader that still lacks a digest calls LoadNew.
  Status LoadNewest(Backend& backend, const RepoCrypto& crypto, int64_t now_ns, bool* found_bad = nullptr);
  // Loads these index objects (not loaded yet) without listing: a media agent's local
  // copies, so it starts without asking the store what there is.
  Status LoadNamed(Backend& backend, const RepoCrypto& crypto, const std::vector<ObjectInfo>& objects,
                   bool* found_bad = nullptr);
  // Rebuilds the index from the index objects there are now (after prune replaced some).
  Status Reload(Backend& backend, const RepoCrypto& crypto, bool* found_bad = nullptr);
  std::vector<std::string> BadFiles() const;  // "path: what is wrong"
  bool HasPack(const PackId& id) const;
  void Add(const PackId& pack, const std::vector<PackEntry>& entries);
  bool Find(const Digest& d, ChunkLocation* loc, PackId* pack) const;
  bool Contains(const Digest& d) const;
  size_t size() const;
  std::vector<PackId> Packs() const;
  // Every (pack, entry) known; for verify.
  std::vector<std::pair<PackId, PackEntry>> AllEntries() const;

 private:
  Status LoadListed(Backend& backend, const RepoCrypto& crypto, const std::vector<ObjectInfo>& objects,
                    int64_t now_ns, bool* found_bad);
  uint32_t PackNoLocked(const PackId& id);
  mutable std::shared_mutex mu_;
  std::unordered_map<Digest, ChunkLocation, DigestHash> map_;
  std::vector<PackId> packs_;
  std::unordered_map<PackId, uint32_t> pack_nos_;
  std::set<std::string> loaded_files_;
  int64_t newest_name_ns_ = 0;  // the latest time among loaded names (IndexNameTime)
  std::vector<std::string> bad_files_;
};

}  // namespace lm

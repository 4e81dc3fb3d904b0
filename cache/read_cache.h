// The read-cache: decompressed chunks on the media agent's fast local disk, keyed by chunk
// digest, so a block shared by many VMs or backups is cached once.
//
// Layout of a cache directory:
//   data      slot_count fixed-size slots of slot_size bytes (= the repository's chunk size);
//             slot i lives at offset i * slot_size; sparse until written
//   index/    RocksDB (WAL on, sync off): "c"+digest(32) -> entry, "meta" -> slot size
//   LOCK      flock()ed by the one process that owns the cache
//   metadata/ a media agent's copies of repository metadata objects (cache/metadata_cache.h)
// An entry (little-endian): u32 version=1, u32 slot, u32 len, u32 reserved, i64 access time
// (unix s, refreshed at most every 10 minutes), i64 pinned-until (unix s, 0 none), then one
// u32 checksum (low 32 bits of XXH3-64) per 4 KiB block of the chunk.
//
// Every hit verifies the checksums of the blocks it returns; a mismatch drops the entry and
// reports a miss, so the caller fetches the chunk again from the repository. Data is written
// before its entry and entries are deleted before their slot is reused; after a crash an
// entry can only point at bytes that fail their checksum, never at silently wrong ones.
//
// Capacity is slot_count * slot_size; eviction is LRU (rebuilt from the access times after a
// restart). Pinned entries and slots with readers are never evicted. Thread-safe: one mutex
// guards the in-memory table; data reads and writes and RocksDB calls happen outside it.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "store/digest.h"
#include "base/env.h"
#include "base/status.h"

namespace rocksdb {
class DB;
}

namespace lm {

inline constexpr uint32_t kCacheBlock = 4096;

struct CacheOptions {
  Env* env = nullptr;  // required
  std::string dir;
  uint64_t capacity_bytes = 10ull << 30;
  uint32_t slot_size = 128 * 1024;  // must equal the repository's chunk size
  Status validate() const;
};

struct CacheStats {
  uint64_t hits = 0, misses = 0, inserts = 0, evictions = 0, corrupt_dropped = 0;
  uint64_t insert_failures = 0;  // no evictable slot: served without caching
  uint64_t bytes_served = 0;     // returned to readers from the cache
  uint64_t entries = 0, used_bytes = 0, capacity_bytes = 0, pinned = 0;
};

class ReadCache {
 public:
  static Result<std::unique_ptr<ReadCache>> Open(const CacheOptions& options);
  ~ReadCache();

  // Copies bytes [off, off+len) of chunk d into out. NotFound when it is not cached,
  // including when its checksum failed (the entry is then dropped). Counts a hit or miss.
  Status Read(const Digest& d, uint32_t off, uint32_t len, char* out);
  bool Contains(const Digest& d) const;
  // The whole cached chunk (verified), or NotFound. Does not count a hit or miss.
  Status ReadWhole(const Digest& d, std::string* out);
  // Caches a whole chunk (len <= slot size). NoSpace when no slot can be evicted.
  Status Insert(const Digest& d, std::string_view data);
  // A pinned entry is never evicted. Session pins last until UnpinSession() or the
  // process ends; `until_unix` > 0 also persists the pin until that time.
  Status Pin(const Digest& d, int64_t until_unix = 0);
  // Takes back one session pin of d (a copy's policy expired); its persistent pin stays.
  void Unpin(const Digest& d);
  void UnpinSession();

  CacheStats Stats() const;
  uint32_t slot_size() const { return slot_size_; }
  const std::string& dir() const { return dir_; }

 private:
  struct Entry {
    uint32_t slot = 0, len = 0;
    int64_t access_s = 0, pin_until = 0;
    uint32_t session_pins = 0;
    std::vector<uint32_t> sums;
    std::list<Digest>::iterator lru;
  };
  ReadCache() = default;
  // Read() and ReadWhole(); `count` says whether it is a reader's hit or miss.
  Status ReadRange(const Digest& d, uint32_t off, uint32_t len, char* out, bool count);
  Status Load();
  bool Evictable(const Entry& e, int64_t now) const;
  // Picks a free slot or evicts the least recently used entry; under mu_.
  bool TakeSlotLocked(uint32_t* slot, Digest* evicted, bool* did_evict);
  void DropLocked(const Digest& d);
  std::string EncodeEntry(const Entry& e) const;
  void PersistEntry(const Digest& d, const std::string& value);
  void DeleteEntry(const Digest& d);

  std::string dir_;
  uint32_t slot_size_ = 0;
  uint32_t slot_count_ = 0;
  Env* env_ = nullptr;
  UniqueFd lock_fd_, data_fd_;
  std::unique_ptr<rocksdb::DB> db_;

  mutable std::mutex mu_;
  std::unordered_map<Digest, Entry, DigestHash> map_;
  std::list<Digest> lru_;  // front: most recently used
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> slot_readers_;
  std::vector<uint32_t> zombie_slots_;  // dropped while read; free once readers reach 0
  std::unordered_set<Digest, DigestHash> filling_;
  mutable CacheStats stats_;
};

}  // namespace lm

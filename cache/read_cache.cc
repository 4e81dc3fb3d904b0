#include "cache/read_cache.h"

#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <sys/file.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <ctime>

#include "cache/rocks.h"
#include "base/bytes.h"
#include "base/log.h"

namespace lm {

namespace {
constexpr int64_t kAccessRefreshSeconds = 600;

std::string EntryKey(const Digest& d) {
  std::string k = "c";
  k.append(reinterpret_cast<const char*>(d.bytes.data()), 32);
  return k;
}

uint32_t BlockSum(const char* p, size_t n) { return static_cast<uint32_t>(XXH3_64bits(p, n)); }

int64_t NowSeconds() { return static_cast<int64_t>(::time(nullptr)); }

}  // namespace

Status CacheOptions::validate() const {
  if (!env) return Status::Invalid("cache options: no env");
  if (dir.empty()) return Status::Invalid("no cache directory given");
  if (slot_size < 4096 || (slot_size & (slot_size - 1))) {
    return Status::Invalid("cache slot size must be a power of two of at least 4 KiB");
  }
  if (capacity_bytes < slot_size) {
    return Status::Invalid("cache size " + std::to_string(capacity_bytes) +
                           " is smaller than one chunk (" + std::to_string(slot_size) + ")");
  }
  if (capacity_bytes / slot_size > 0xFFFFFFF0ull) return Status::Invalid("cache size too large");
  return Status::Ok();
}

Result<std::unique_ptr<ReadCache>> ReadCache::Open(const CacheOptions& o) {
  LM_RETURN_IF_ERROR(o.validate());
  LM_RETURN_IF_ERROR(MkdirAll(o.dir));
  std::unique_ptr<ReadCache> c(new ReadCache());
  c->dir_ = o.dir;
  c->slot_size_ = o.slot_size;
  c->env_ = o.env;
  c->slot_count_ = static_cast<uint32_t>(o.capacity_bytes / o.slot_size);

  std::string lock_path = JoinPath(o.dir, "LOCK");
  LM_ASSIGN_OR_RETURN(c->lock_fd_, o.env->Open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW, 0600));
  if (::flock(c->lock_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    return Status::Busy("cache directory " + o.dir + " is in use by another livemount process");
  }

  rocksdb::Options opts;
  opts.keep_log_file_num = 2;
  opts.max_total_wal_size = 64 << 20;
  opts.write_buffer_size = 16 << 20;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  std::string index_dir = JoinPath(o.dir, "index");
  LM_ASSIGN_OR_RETURN(c->db_, OpenRocks(index_dir, opts));

  std::string meta;
  rocksdb::Status ms = c->db_->Get(rocksdb::ReadOptions(), "meta", &meta);
  if (ms.ok()) {
    uint32_t stored = meta.size() == 4 ? GetU32(meta.data()) : 0;
    if (stored != o.slot_size) {
      return Status::Invalid("cache directory " + o.dir + " holds chunks of " +
                             std::to_string(stored) + " bytes, this repository uses " +
                             std::to_string(o.slot_size) + "; use another --cache-dir");
    }
  } else if (ms.IsNotFound()) {
    std::string v;
    PutU32(&v, o.slot_size);
    LM_RETURN_IF_ERROR(FromRocks(c->db_->Put(rocksdb::WriteOptions(), "meta", v), index_dir));
  } else {
    return FromRocks(ms, index_dir);
  }

  std::string data_path = JoinPath(o.dir, "data");
  LM_ASSIGN_OR_RETURN(c->data_fd_, o.env->Open(data_path, O_RDWR | O_CREAT | O_NOFOLLOW, 0600));
  if (::ftruncate(c->data_fd_.get(), static_cast<off_t>(uint64_t{c->slot_count_} * o.slot_size)) != 0) {
    return Status::FromErrno(errno, "size " + data_path);
  }
  LM_RETURN_IF_ERROR(c->Load());
  return c;
}

ReadCache::~ReadCache() {
  if (db_) {
    (void)db_->FlushWAL(false);
    (void)db_->Close();
  }
}

Status ReadCache::Load() {
  slot_readers_.assign(slot_count_, 0);
  std::vector<bool> used(slot_count_, false);
  std::vector<std::pair<int64_t, Digest>> by_access;
  std::vector<Digest> stale;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("c"); it->Valid() && it->key().starts_with("c"); it->Next()) {
    rocksdb::Slice k = it->key(), v = it->value();
    Digest d;
    if (k.size() != 33) continue;
    std::memcpy(d.bytes.data(), k.data() + 1, 32);
    ByteReader r(std::string_view(v.data(), v.size()));
    Entry e;
    uint32_t version = r.U32();
    e.slot = r.U32();
    e.len = r.U32();
    r.U32();
    e.access_s = static_cast<int64_t>(r.U64());
    e.pin_until = static_cast<int64_t>(r.U64());
    size_t blocks = (e.len + kCacheBlock - 1) / kCacheBlock;
    bool ok = !r.failed() && version == 1 && e.slot < slot_count_ && !used[e.slot] &&
              e.len > 0 && e.len <= slot_size_ && r.remaining() == blocks * 4;
    if (!ok) {  // from a larger cache, or damaged: forget it
      stale.push_back(d);
      continue;
    }
    for (size_t b = 0; b < blocks; b++) e.sums.push_back(r.U32());
    used[e.slot] = true;
    stats_.used_bytes += e.len;
    map_.emplace(d, std::move(e));
    by_access.push_back({map_[d].access_s, d});
  }
  if (!it->status().ok()) return FromRocks(it->status(), dir_);
  for (const Digest& d : stale) DeleteEntry(d);
  std::sort(by_access.begin(), by_access.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (auto& [t, d] : by_access) map_[d].lru = lru_.insert(lru_.end(), d);
  for (uint32_t s = slot_count_; s-- > 0;)
    if (!used[s]) free_slots_.push_back(s);  // pop_back hands out low slots first
  if (!stale.empty()) LogInfo(dir_ + ": dropped " + std::to_string(stale.size()) + " stale cache entries");
  return Status::Ok();
}

std::string ReadCache::EncodeEntry(const Entry& e) const {
  std::string v;
  PutU32(&v, 1);
  PutU32(&v, e.slot);
  PutU32(&v, e.len);
  PutU32(&v, 0);
  PutU64(&v, static_cast<uint64_t>(e.access_s));
  PutU64(&v, static_cast<uint64_t>(e.pin_until));
  for (uint32_t s : e.sums) PutU32(&v, s);
  return v;
}

void ReadCache::PersistEntry(const Digest& d, const std::string& value) {
  rocksdb::Status s = db_->Put(rocksdb::WriteOptions(), EntryKey(d), value);
  if (!s.ok()) LogOnce(LogLevel::kWarn, "cache-put", dir_ + ": cannot write cache index: " + s.ToString());
}

void ReadCache::DeleteEntry(const Digest& d) {
  rocksdb::Status s = db_->Delete(rocksdb::WriteOptions(), EntryKey(d));
  if (!s.ok()) LogOnce(LogLevel::kWarn, "cache-del", dir_ + ": cannot write cache index: " + s.ToString());
}

bool ReadCache::Evictable(const Entry& e, int64_t now) const {
  return e.session_pins == 0 && e.pin_until <= now && slot_readers_[e.slot] == 0;
}

bool ReadCache::TakeSlotLocked(uint32_t* slot, Digest* evicted, bool* did_evict) {
  *did_evict = false;
  for (size_t i = 0; i < zombie_slots_.size(); i++) {
    if (slot_readers_[zombie_slots_[i]] == 0) {
      *slot = zombie_slots_[i];
      zombie_slots_.erase(zombie_slots_.begin() + static_cast<long>(i));
      return true;
    }
  }
  if (!free_slots_.empty()) {
    *slot = free_slots_.back();
    free_slots_.pop_back();
    return true;
  }
  int64_t now = NowSeconds();
  int scanned = 0;
  for (auto it = lru_.rbegin(); it != lru_.rend() && scanned < 4096; ++it, ++scanned) {
    auto e = map_.find(*it);
    if (!Evictable(e->second, now)) continue;
    *slot = e->second.slot;
    *evicted = *it;
    *did_evict = true;
    stats_.used_bytes -= e->second.len;
    lru_.erase(e->second.lru);
    map_.erase(e);
    stats_.evictions++;
    return true;
  }
  return false;
}

void ReadCache::DropLocked(const Digest& d) {
  auto it = map_.find(d);
  if (it == map_.end()) return;
  zombie_slots_.push_back(it->second.slot);
  stats_.used_bytes -= it->second.len;
  lru_.erase(it->second.lru);
  map_.erase(it);
}

Status ReadCache::Read(const Digest& d, uint32_t off, uint32_t len, char* out) {
  return ReadRange(d, off, len, out, true);
}

Status ReadCache::ReadRange(const Digest& d, uint32_t off, uint32_t len, char* out, bool count) {
  uint32_t slot, first, last, entry_len;
  std::vector<uint32_t> sums;
  std::string refresh;
  {
    std::lock_guard lock(mu_);
    auto it = map_.find(d);
    if (it == map_.end()) {
      if (count) stats_.misses++;
      return Status::NotFound("not cached");
    }
    Entry& e = it->second;
    if (uint64_t{off} + len > e.len) {
      return Status::Invalid("cache read past the end of chunk " + d.ShortHex());
    }
    slot = e.slot;
    entry_len = e.len;
    first = off / kCacheBlock;
    last = len ? (off + len - 1) / kCacheBlock : first;
    sums.assign(e.sums.begin() + first, e.sums.begin() + last + 1);
    slot_readers_[slot]++;
    lru_.splice(lru_.begin(), lru_, e.lru);
    int64_t now = NowSeconds();
    if (now - e.access_s > kAccessRefreshSeconds) {
      e.access_s = now;
      refresh = EncodeEntry(e);
    }
  }
  uint64_t start = uint64_t{first} * kCacheBlock;
  uint64_t end = std::min<uint64_t>(entry_len, uint64_t{last + 1} * kCacheBlock);
  // Block-aligned requests (the common case: page-sized FUSE reads) land straight in `out`.
  bool direct = start == off && end == uint64_t{off} + len;
  thread_local std::string scratch;
  char* buf = out;
  if (!direct) {
    scratch.resize(end - start);
    buf = scratch.data();
  }
  std::string data_path = dir_ + "/data";
  Status s = env_->PReadExact(data_fd_.get(), buf, end - start,
                                        uint64_t{slot} * slot_size_ + start, data_path);
  bool good = s.ok();
  for (uint32_t b = 0; good && b < sums.size(); b++) {
    uint64_t bs = uint64_t{b} * kCacheBlock;
    good = BlockSum(buf + bs, std::min<uint64_t>(kCacheBlock, end - start - bs)) == sums[b];
  }
  bool dropped = false;
  {
    std::lock_guard lock(mu_);
    slot_readers_[slot]--;
    if (good) {
      if (count) {
        stats_.hits++;
        stats_.bytes_served += len;
      }
    } else {
      auto it = map_.find(d);
      if (it != map_.end() && it->second.slot == slot) {
        DropLocked(d);
        dropped = true;
      }
      stats_.corrupt_dropped++;
      if (count) stats_.misses++;
    }
  }
  if (!good) {
    if (dropped) DeleteEntry(d);
    LogWarn(dir_ + ": cache entry for chunk " + d.ShortHex() + " in slot " + std::to_string(slot) +
            " failed its checksum (" + (s.ok() ? "bad data" : s.message()) + "); dropped");
    return Status::NotFound("cache entry dropped");
  }
  if (!direct) std::memcpy(out, buf + (off - start), len);
  if (!refresh.empty()) PersistEntry(d, refresh);
  return Status::Ok();
}

Status ReadCache::ReadWhole(const Digest& d, std::string* out) {
  uint32_t len;
  {
    std::lock_guard lock(mu_);
    auto it = map_.find(d);
    if (it == map_.end()) return Status::NotFound("not cached");
    len = it->second.len;
  }
  out->resize(len);
  return ReadRange(d, 0, len, out->data(), false);  // internal: neither a hit nor a miss
}

bool ReadCache::Contains(const Digest& d) const {
  std::lock_guard lock(mu_);
  return map_.count(d) != 0;
}

Status ReadCache::Insert(const Digest& d, std::string_view data) {
  if (data.empty() || data.size() > slot_size_) {
    return Status::Invalid("cache insert of " + std::to_string(data.size()) + " bytes");
  }
  uint32_t slot = 0;
  Digest evicted;
  bool did_evict = false;
  {
    std::lock_guard lock(mu_);
    if (map_.count(d) || filling_.count(d)) return Status::Ok();
    if (!TakeSlotLocked(&slot, &evicted, &did_evict)) {
      stats_.insert_failures++;
      return Status::NoSpace(dir_ + ": every cache slot is pinned or being read");
    }
    filling_.insert(d);
  }
  // The victim's entry goes before its slot is overwritten.
  if (did_evict) DeleteEntry(evicted);
  Entry e;
  e.slot = slot;
  e.len = static_cast<uint32_t>(data.size());
  e.access_s = NowSeconds();
  for (size_t b = 0; b < data.size(); b += kCacheBlock) {
    e.sums.push_back(BlockSum(data.data() + b, std::min<size_t>(kCacheBlock, data.size() - b)));
  }
  Status s = env_->PWrite(data_fd_.get(), data.data(), data.size(),
                                    uint64_t{slot} * slot_size_, dir_ + "/data");
  if (s.ok()) PersistEntry(d, EncodeEntry(e));
  std::lock_guard lock(mu_);
  filling_.erase(d);
  if (!s.ok()) {
    free_slots_.push_back(slot);
    return s;
  }
  stats_.inserts++;
  stats_.used_bytes += e.len;
  e.lru = lru_.insert(lru_.begin(), d);
  map_.emplace(d, std::move(e));
  return Status::Ok();
}

Status ReadCache::Pin(const Digest& d, int64_t until_unix) {
  std::string value;
  {
    std::lock_guard lock(mu_);
    auto it = map_.find(d);
    if (it == map_.end()) return Status::NotFound("chunk " + d.ShortHex() + " is not cached");
    it->second.session_pins++;
    if (until_unix > it->second.pin_until) {
      it->second.pin_until = until_unix;
      value = EncodeEntry(it->second);
    }
  }
  if (!value.empty()) PersistEntry(d, value);
  return Status::Ok();
}

void ReadCache::Unpin(const Digest& d) {
  std::lock_guard lock(mu_);
  auto it = map_.find(d);
  if (it != map_.end() && it->second.session_pins > 0) it->second.session_pins--;
}

void ReadCache::UnpinSession() {
  std::lock_guard lock(mu_);
  for (auto& [d, e] : map_) e.session_pins = 0;
}

CacheStats ReadCache::Stats() const {
  std::lock_guard lock(mu_);
  CacheStats s = stats_;
  s.entries = map_.size();
  s.capacity_bytes = uint64_t{slot_count_} * slot_size_;
  int64_t now = NowSeconds();
  for (auto& [d, e] : map_) s.pinned += (e.session_pins > 0 || e.pin_until > now);
  return s;
}

}  // namespace lm

#include "cache/chunk_table_db.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <cstring>

#include "base/bytes.h"
#include "base/log.h"
#include "cache/rocks.h"

namespace lm {

namespace {
constexpr uint32_t kFormat = 1;
constexpr size_t kValueSize = 16 + 8 + 4 + 4 + 1;
constexpr char kMetaKey[] = "M";

// The generation's key prefix: a kind letter and the generation, big-endian, so one
// generation's keys of one kind are one range.
std::string Prefix(char kind, uint32_t gen) {
  std::string k(1, kind);
  for (int shift = 24; shift >= 0; shift -= 8) k.push_back(char(gen >> shift));
  return k;
}

// What every generation of one database shares.
struct Shared {
  std::unique_ptr<rocksdb::DB> db;
  std::string dir;
  std::atomic<uint32_t> current{1};   // the generation a later open finds
  std::atomic<uint32_t> next_gen{2};  // for NewGeneration
};

void WarnOnce(const Shared& s, const rocksdb::Status& st) {
  LogOnce(LogLevel::kWarn, "chunk-table:" + s.dir,
          "chunk index " + s.dir + ": " + st.ToString() + " (remove the directory to rebuild it from the repository)");
}

void DropGeneration(rocksdb::DB& db, uint32_t gen) {
  for (char kind : {'c', 'p', 's'}) {
    db.DeleteRange(rocksdb::WriteOptions(), db.DefaultColumnFamily(), Prefix(kind, gen), Prefix(kind, gen + 1));
  }
}

class DiskChunkTable : public ChunkTable {
 public:
  DiskChunkTable(std::shared_ptr<Shared> shared, uint32_t gen) : s_(std::move(shared)), gen_(gen) {}
  ~DiskChunkTable() override {
    // A generation replaced by a rebuild, or a rebuild that failed: its keys go.
    if (gen_ != s_->current) DropGeneration(*s_->db, gen_);
  }

  Status AddSource(const std::string& source, const IndexFileContents& contents) override {
    rocksdb::WriteBatch batch;
    std::string key, value;
    for (auto& [id, entries] : contents.packs) {
      std::string pack;
      if (!AppendPackIdBytes(id, &pack)) return Status::Corrupt(source + ": pack id '" + id + "' is not 32 hex characters");
      batch.Put(Prefix('p', gen_) + pack, "");
      for (const PackEntry& e : entries) {
        key = Prefix('c', gen_);
        key.append(reinterpret_cast<const char*>(e.digest.bytes.data()), 32);
        value = pack;
        PutU64(&value, e.offset);
        PutU32(&value, e.stored_len);
        PutU32(&value, e.raw_len);
        PutU8(&value, uint8_t(e.codec));
        batch.Put(key, value);
      }
    }
    batch.Put(Prefix('s', gen_) + source, std::string(1, '\0'));
    return FromRocks(s_->db->Write(rocksdb::WriteOptions(), &batch), s_->dir);
  }

  Status AddBadSource(const std::string& source, const std::string& error) override {
    return FromRocks(s_->db->Put(rocksdb::WriteOptions(), Prefix('s', gen_) + source, "\1" + error), s_->dir);
  }

  bool HasSource(const std::string& source) const override { return Exists(Prefix('s', gen_) + source); }

  std::vector<std::string> Sources() const override {
    std::vector<std::string> out;
    Scan('s', [&](std::string_view key, std::string_view) {
      out.emplace_back(key);
      return true;
    });
    return out;
  }

  std::vector<std::string> BadSources() const override {
    std::vector<std::string> out;
    Scan('s', [&](std::string_view, std::string_view value) {
      if (!value.empty() && value[0] == '\1') out.emplace_back(value.substr(1));
      return true;
    });
    return out;
  }

  bool Find(const Digest& d, ChunkLocation* loc, PackId* pack) const override {
    std::string key = Prefix('c', gen_);
    key.append(reinterpret_cast<const char*>(d.bytes.data()), 32);
    rocksdb::PinnableSlice v;
    rocksdb::Status st = s_->db->Get(rocksdb::ReadOptions(), s_->db->DefaultColumnFamily(), key, &v);
    if (st.IsNotFound()) return false;
    if (!st.ok()) return WarnOnce(*s_, st), false;
    PackEntry e;
    if (!Decode(d, std::string_view(v.data(), v.size()), pack, &e)) return false;
    if (loc) *loc = ChunkLocation{e.stored_len, e.raw_len, e.codec, e.offset};
    return true;
  }

  bool HasPack(const PackId& id) const override {
    std::string raw;
    return AppendPackIdBytes(id, &raw) && Exists(Prefix('p', gen_) + raw);
  }

  uint64_t size() const override {
    uint64_t n = 0;
    Scan('c', [&](std::string_view, std::string_view) { return ++n, true; });
    return n;
  }

  void ForEach(const std::function<bool(const PackId&, const PackEntry&)>& fn) const override {
    Scan('c', [&](std::string_view key, std::string_view value) {
      Digest d;
      PackId pack;
      PackEntry e;
      if (key.size() != 32) return true;
      std::memcpy(d.bytes.data(), key.data(), 32);
      if (!Decode(d, value, &pack, &e)) return true;
      return fn(pack, e);
    });
  }

  Result<std::unique_ptr<ChunkTable>> NewGeneration() override {
    uint32_t gen = s_->next_gen++;
    DropGeneration(*s_->db, gen);  // nothing there but in a process that ran out of numbers
    return std::unique_ptr<ChunkTable>(new DiskChunkTable(s_, gen));
  }

  Status Commit() override {
    uint32_t old = s_->current;
    if (old == gen_) return Status::Ok();
    std::string meta;
    PutU32(&meta, kFormat);
    PutU32(&meta, gen_);
    rocksdb::WriteOptions sync;
    sync.sync = true;  // the old generation's keys are dropped next: this must hold first
    LM_RETURN_IF_ERROR(FromRocks(s_->db->Put(sync, kMetaKey, meta), s_->dir));
    s_->current = gen_;
    return Status::Ok();  // the old table drops its keys when it goes
  }

  std::string Describe() const override { return s_->dir; }

 private:
  bool Exists(const std::string& key) const {
    rocksdb::PinnableSlice v;
    rocksdb::Status st = s_->db->Get(rocksdb::ReadOptions(), s_->db->DefaultColumnFamily(), key, &v);
    if (!st.ok() && !st.IsNotFound()) WarnOnce(*s_, st);
    return st.ok();
  }

  // fn(key without its prefix, value) for each key of `kind` in this generation.
  void Scan(char kind, const std::function<bool(std::string_view, std::string_view)>& fn) const {
    std::string begin = Prefix(kind, gen_), end = Prefix(kind, gen_ + 1);
    rocksdb::Slice upper(end);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper;
    ro.fill_cache = false;  // a scan would evict what lookups need
    std::unique_ptr<rocksdb::Iterator> it(s_->db->NewIterator(ro));
    for (it->Seek(begin); it->Valid(); it->Next()) {
      rocksdb::Slice k = it->key(), v = it->value();
      if (!fn(std::string_view(k.data() + 5, k.size() - 5), std::string_view(v.data(), v.size()))) return;
    }
    if (!it->status().ok()) WarnOnce(*s_, it->status());
  }

  bool Decode(const Digest& d, std::string_view v, PackId* pack, PackEntry* e) const {
    if (v.size() != kValueSize || uint8_t(v[32]) > uint8_t(Codec::kZstd)) {
      LogOnce(LogLevel::kWarn, "chunk-table-value:" + s_->dir,
              "chunk index " + s_->dir + ": a damaged entry (remove the directory to rebuild it)");
      return false;
    }
    if (pack) *pack = PackIdFromBytes(v.data());
    *e = PackEntry{d, GetU64(v.data() + 16), GetU32(v.data() + 24), GetU32(v.data() + 28), Codec(uint8_t(v[32]))};
    return true;
  }

  std::shared_ptr<Shared> s_;
  uint32_t gen_;
};

// Opens one slot's database, reads its generation and drops every other one's keys.
Result<std::unique_ptr<ChunkTable>> OpenSlot(const std::string& dir, const DiskChunkTableOptions& o) {
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(o.block_cache_bytes);
  t.cache_index_and_filter_blocks = true;  // charged to the cache: memory stays bounded
  t.pin_top_level_index_and_filter = true;
  t.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  t.partition_filters = true;
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));  // a backup's lookups mostly miss
  rocksdb::Options opts;
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  opts.write_buffer_size = o.write_buffer_bytes;
  opts.max_write_buffer_number = 2;
  opts.compression = rocksdb::kNoCompression;  // digests do not compress
  opts.max_open_files = 256;
  LM_ASSIGN_OR_RETURN(auto db, OpenRocks(dir, opts));
  auto shared = std::make_shared<Shared>();
  shared->db = std::move(db);
  shared->dir = dir;
  std::string meta;
  rocksdb::Status st = shared->db->Get(rocksdb::ReadOptions(), kMetaKey, &meta);
  uint32_t gen = 1;
  if (st.ok() && meta.size() == 8 && GetU32(meta.data()) == kFormat && GetU32(meta.data() + 4) != 0 &&
      GetU32(meta.data() + 4) < 0x7fffffffu) {
    gen = GetU32(meta.data() + 4);
  } else if (st.ok() || !st.IsNotFound()) {
    // Another format, or damage: start over (it is only a copy of the repository's index).
    LogWarn("chunk index " + dir + ": " + (st.ok() ? "unknown format" : st.ToString()) + "; rebuilt from the repository");
    for (char kind : {'c', 'p', 's'}) {
      shared->db->DeleteRange(rocksdb::WriteOptions(), shared->db->DefaultColumnFamily(), std::string(1, kind),
                              std::string(1, char(kind + 1)));
    }
  }
  std::string fresh;
  PutU32(&fresh, kFormat);
  PutU32(&fresh, gen);
  LM_RETURN_IF_ERROR(FromRocks(shared->db->Put(rocksdb::WriteOptions(), kMetaKey, fresh), dir));
  for (char kind : {'c', 'p', 's'}) {  // what a rebuild left when it was cut short
    auto& db = *shared->db;
    db.DeleteRange(rocksdb::WriteOptions(), db.DefaultColumnFamily(), std::string(1, kind), Prefix(kind, gen));
    db.DeleteRange(rocksdb::WriteOptions(), db.DefaultColumnFamily(), Prefix(kind, gen + 1),
                   std::string(1, char(kind + 1)));
  }
  shared->current = gen;
  shared->next_gen = gen + 1;
  return std::unique_ptr<ChunkTable>(new DiskChunkTable(shared, gen));
}
}  // namespace

Status DiskChunkTableOptions::validate() const {
  if (block_cache_bytes < (1u << 20) || write_buffer_bytes < (1u << 20)) {
    return Status::Invalid("chunk index: the block cache and write buffer need at least 1 MiB each");
  }
  if (slots < 1 || slots > 64) return Status::Invalid("chunk index: slots must be 1 to 64");
  return Status::Ok();
}

Result<std::unique_ptr<ChunkTable>> OpenDiskChunkTable(const std::string& cache_dir, const std::string& repo_key,
                                                       DiskChunkTableOptions options) {
  LM_RETURN_IF_ERROR(options.validate());
  if (repo_key.empty() || repo_key.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return Status::Invalid("chunk index: bad repository key '" + repo_key + "'");
  }
  Status busy;
  for (int slot = 1; slot <= options.slots; slot++) {
    std::string dir = cache_dir + "/chunk-index/" + repo_key + (slot == 1 ? "" : "-" + std::to_string(slot));
    auto table = OpenSlot(dir, options);
    if (table.ok() || table.status().code() != Code::kBusy) return table;
    busy = table.status();
  }
  return busy;
}

ChunkTableOpener DiskChunkTableOpener(const std::string& cache_dir, DiskChunkTableOptions options) {
  return [cache_dir, options](const std::string& repo_key) -> Result<std::unique_ptr<ChunkTable>> {
    auto table = OpenDiskChunkTable(cache_dir, repo_key, options);
    if (table.ok() || table.status().code() == Code::kInvalid) return table;
    // A copy is never needed: a full cache disk, a directory this user may not write, or
    // every slot in use only costs memory and the time to read the index objects.
    LogWarn(table.status().message() + (table.status().code() == Code::kBusy ? " (every slot is in use)" : "") +
            ": the chunk index is kept in memory this time");
    return std::unique_ptr<ChunkTable>(new MemoryChunkTable);
  };
}

}  // namespace lm

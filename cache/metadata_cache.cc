#include "cache/metadata_cache.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <xxhash.h>

#include <cstring>

#include "base/log.h"
#include "cache/rocks.h"

namespace lm {

namespace {
constexpr size_t kSumSize = 8;

uint64_t Sum(std::string_view data) { return XXH3_64bits(data.data(), data.size()); }

void WarnOnce(const std::string& dir, const rocksdb::Status& s) {
  LogOnce(LogLevel::kWarn, "metadata-cache", "metadata cache " + dir + ": " + s.ToString() +
                                                 " (objects are read from the repository instead)");
}
}  // namespace

MetadataCache::MetadataCache(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}
MetadataCache::~MetadataCache() = default;

Result<std::unique_ptr<MetadataCache>> MetadataCache::Open(const std::string& cache_dir) {
  rocksdb::Options opts;
  opts.max_open_files = 64;
  std::string dir = cache_dir + "/metadata";
  LM_ASSIGN_OR_RETURN(auto db, OpenRocks(dir, opts));
  std::unique_ptr<MetadataCache> c(new MetadataCache(std::move(db)));
  c->dir_ = dir;
  return c;
}

bool MetadataCache::Get(const std::string& key, std::string* data) {
  std::string v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &v);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return WarnOnce(dir_, s), false;
  uint64_t want = 0;
  if (v.size() >= kSumSize) std::memcpy(&want, v.data(), kSumSize);
  std::string_view bytes = std::string_view(v).substr(std::min(v.size(), kSumSize));
  if (v.size() < kSumSize || Sum(bytes) != want) {
    LogOnce(LogLevel::kWarn, "metadata-cache-damaged",
            "metadata cache " + dir_ + ": damaged copy of " + key + " dropped (read again from the repository)");
    Erase({key});
    return false;
  }
  data->assign(bytes);
  return true;
}

void MetadataCache::Put(const std::string& key, std::string_view data) {
  std::string v(kSumSize, '\0');
  uint64_t sum = Sum(data);
  std::memcpy(v.data(), &sum, kSumSize);  // little-endian hosts only, like the rest of the cache
  v.append(data);
  rocksdb::Status s = db_->Put(rocksdb::WriteOptions(), key, v);
  if (!s.ok()) WarnOnce(dir_, s);
}

void MetadataCache::Erase(const std::vector<std::string>& keys) {
  rocksdb::WriteBatch batch;
  for (const std::string& k : keys) batch.Delete(k);
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) WarnOnce(dir_, s);
}

std::vector<std::string> MetadataCache::Keys(const std::string& prefix) {
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    out.push_back(it->key().ToString());
  }
  if (!it->status().ok()) WarnOnce(dir_, it->status());
  return out;
}

}  // namespace lm

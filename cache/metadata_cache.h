// MetadataCache: the media agent's local copies of repository metadata objects (see
// store/backend/caching_backend.h), in a RocksDB of the cache directory:
//   CACHE/metadata/   RocksDB (WAL on, sync off): "<repo key>/<object name>" ->
//                     u64 XXH3-64 of the bytes, then the object's bytes as stored;
//                     <repo key> = the first 32 hex characters of the SHA-256 of
//                     "<absolute location>\n<config id>"
// A copy whose checksum fails (the local disk damaged it) is dropped and reads as a miss,
// so the object is read from the repository again; nothing here is ever the only copy.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "base/status.h"
#include "store/backend/caching_backend.h"

namespace rocksdb {
class DB;
}

namespace lm {

class MetadataCache : public ObjectCache {
 public:
  // Opens (or creates) CACHE_DIR/metadata.
  static Result<std::unique_ptr<MetadataCache>> Open(const std::string& cache_dir);
  ~MetadataCache() override;

  bool Get(const std::string& key, std::string* data) override;
  void Put(const std::string& key, std::string_view data) override;
  void Erase(const std::vector<std::string>& keys) override;
  std::vector<std::string> Keys(const std::string& prefix) override;

 private:
  explicit MetadataCache(std::unique_ptr<rocksdb::DB> db);
  std::unique_ptr<rocksdb::DB> db_;
  std::string dir_;
};

}  // namespace lm

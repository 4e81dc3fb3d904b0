// CachingBackend: a backend that keeps local copies of the repository's small immutable
// metadata objects (index objects, backup.json and its checksum, file indexes, profiles)
// in an ObjectCache, so a media agent that starts again, or opens a copy it opened before,
// reads them from its own disk instead of the object store. Packs are never cached here
// (the read-cache holds their chunks, decompressed).
//
// Correct because objects are immutable and names are never reused: a cached copy is the
// object. Copies are kept as stored (sealed in an encrypted repository), so they are opened
// and checked on every use like the object itself, and stay sealed at rest. Keys carry the
// repository's identity (its config id and location), so one cache directory serves
// several repositories. A listing drops the
// copies of objects under its prefix that are gone (prune deleted them), so the cache holds
// no more than the repository's live metadata.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/backend/backend.h"

namespace lm {

// Where the copies live (the media agent's RocksDB, in cache/metadata_cache.h).
class ObjectCache {
 public:
  virtual ~ObjectCache() = default;
  virtual bool Get(const std::string& key, std::string* data) = 0;
  virtual void Put(const std::string& key, std::string_view data) = 0;
  virtual void Erase(const std::vector<std::string>& keys) = 0;
  // Every key starting with `prefix`, sorted.
  virtual std::vector<std::string> Keys(const std::string& prefix) = 0;
};

struct ObjectCacheStats {
  uint64_t hits = 0, misses = 0, dropped = 0;
};

class CachingBackend : public Backend {
 public:
  // `repo_key` names the repository in the cache's keys; `cache` must outlive this backend.
  CachingBackend(std::unique_ptr<Backend> inner, ObjectCache& cache, const std::string& repo_key);

  // True for the objects kept: index/*.idx and backups/<vm>/<id>/{backup.json,
  // backup.json.sha256,profile.json,files/*.fidx}.
  static bool Cacheable(std::string_view name);
  ObjectCacheStats Stats() const { return {hits_, misses_, dropped_}; }
  // The names under `prefix` this cache holds copies of (sizes unknown: 0), sorted.
  std::vector<ObjectInfo> CachedNames(const std::string& prefix);

  const std::string& location() const override { return inner_->location(); }
  std::string Describe(const std::string& name) const override { return inner_->Describe(name); }
  Status PrepareNew() override { return inner_->PrepareNew(); }
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override;
  Result<std::vector<ObjectInfo>> ListAfter(const std::string& prefix, const std::string& start_after) override {
    return inner_->ListAfter(prefix, start_after);  // a partial listing says nothing about what is gone
  }
  Result<std::vector<std::string>> ListPartial(const std::string& prefix) override {
    return inner_->ListPartial(prefix);
  }
  Status DeletePartial(const std::string& name) override { return inner_->DeletePartial(name); }
  Result<uint64_t> Size(const std::string& name) override { return inner_->Size(name); }
  Status ReadRange(const std::string& name, uint64_t offset, size_t length, std::string* out) override {
    return inner_->ReadRange(name, offset, length, out);
  }
  Result<std::string> ReadAll(const std::string& name) override;
  Result<std::unique_ptr<ObjectWriter>> NewWriter(const std::string& name) override {
    return inner_->NewWriter(name);
  }
  Status Delete(const std::string& name) override;
  Result<std::unique_ptr<BackendLock>> Lock(LockMode mode) override { return inner_->Lock(mode); }
  std::optional<RequestStats> Requests() const override { return inner_->Requests(); }

 private:
  std::string Key(const std::string& name) const { return ns_ + name; }

  std::unique_ptr<Backend> inner_;
  ObjectCache& cache_;
  std::string ns_;  // "<repo key>/"
  std::atomic<uint64_t> hits_{0}, misses_{0}, dropped_{0};
};

}  // namespace lm

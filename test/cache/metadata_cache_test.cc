// The media agent's metadata cache (cache/metadata_cache.h under
// store/backend/caching_backend.h): a repository opened again reads its index and backup
// metadata from the local copies, not the repository; copies of deleted objects go; a
// damaged copy is read again; another repository never sees them.
#include <catch2/catch.hpp>

#include <rocksdb/db.h>

#include "cache/metadata_cache.h"
#include "store/backend/local_backend.h"
#include "store/backup.h"
#include "store/forget.h"
#include "store/prune.h"
#include "test/test_util.h"

using namespace lm;

namespace {
constexpr uint32_t kChunk = 4096;

// Counts whole-object reads by folder.
class CountingBackend : public LocalBackend {
 public:
  using LocalBackend::LocalBackend;
  Result<std::string> ReadAll(const std::string& name) override {
    if (name.rfind("index/", 0) == 0) index_reads++;
    if (name.rfind("backups/", 0) == 0) backup_reads++;
    return LocalBackend::ReadAll(name);
  }
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override {
    if (prefix != "keys/") lists++;  // the key slots are always read afresh
    return LocalBackend::List(prefix);
  }
  int index_reads = 0, backup_reads = 0, lists = 0;
};

struct Fixture {
  test::TempDir dir;
  std::string repo_path = dir / "repo";
  std::string id;
  Fixture() {
    InitOptions io{kChunk, true, Password(), ScryptParams{1024, 8, 1}};
    REQUIRE(Repository::Init(repo_path, io, Env::Default()).ok());
    REQUIRE(MkdirAll(dir / "vm").ok());
    test::WriteFile(dir / "vm/disk.raw", test::RandomBytes(64 * kChunk, 5));
    auto repo = Open(nullptr, nullptr);
    auto r = RunBackup(*repo, BackupOptions{"vm1", dir / "vm"});
    REQUIRE(r.ok());
    id = r->manifest.id;
  }
  static PasswordSource Password() {
    return []() -> Result<std::string> { return std::string("pw"); };
  }
  // Opens the repository through `counting` (if given) with `cache` (if given).
  std::unique_ptr<Repository> Open(ObjectCache* cache, CountingBackend** counting) {
    RepoOptions o;
    o.env = Env::Default();
    o.password = Password();
    o.object_cache = cache;
    auto* b = new CountingBackend(repo_path, Env::Default());
    if (counting) *counting = b;
    auto r = Repository::Open(std::unique_ptr<Backend>(b), o);
    REQUIRE(r.ok());
    return std::move(r).value();
  }
  // Everything a mount reads to serve the copy: index, manifest, file indexes.
  void ReadCopy(Repository& repo) {
    auto m = repo.LoadManifest(BackupRef{"vm1", id});
    REQUIRE(m.ok());
    for (const FileEntry& f : m->files) REQUIRE(repo.LoadFileChunks(BackupRef{"vm1", id}, f).ok());
  }
};
}  // namespace

TEST_CASE("names of immutable metadata objects are the ones kept", "[metadata_cache]") {
  CHECK(CachingBackend::Cacheable("index/0123.idx"));
  CHECK(CachingBackend::Cacheable("backups/vm/2026-01-01T00:00:00Z/backup.json"));
  CHECK(CachingBackend::Cacheable("backups/vm/2026-01-01T00:00:00Z/backup.json.sha256"));
  CHECK(CachingBackend::Cacheable("backups/vm/2026-01-01T00:00:00Z/files/3.fidx"));
  CHECK(CachingBackend::Cacheable("backups/vm/2026-01-01T00:00:00Z/profile.json"));
  CHECK_FALSE(CachingBackend::Cacheable("config"));
  CHECK_FALSE(CachingBackend::Cacheable("keys/abc"));
  CHECK_FALSE(CachingBackend::Cacheable("packs/ab/ab12.pack"));
  CHECK_FALSE(CachingBackend::Cacheable("leases/host/1.json"));
  CHECK_FALSE(CachingBackend::Cacheable("backups/vm/2026-01-01T00:00:00Z/claim.json"));
  CHECK_FALSE(CachingBackend::Cacheable("backups/vm/backup.json"));
  CHECK_FALSE(CachingBackend::Cacheable("backups/vm/id/files/x/1.fidx"));
}

TEST_CASE("a repository opened again reads its metadata from the local copies", "[metadata_cache]") {
  Fixture f;
  auto cache = MetadataCache::Open(f.dir / "cache");
  REQUIRE(cache.ok());
  CountingBackend* first = nullptr;
  {
    auto repo = f.Open(cache->get(), &first);
    f.ReadCopy(*repo);
    CHECK(first->index_reads >= 1);
    CHECK(first->backup_reads >= 3);  // backup.json, its checksum, a file index
    CHECK(repo->MetadataCacheStats()->hits == 0);
  }
  CountingBackend* second = nullptr;
  auto repo = f.Open(cache->get(), &second);
  CHECK(second->lists == 0);  // it starts without asking the store what there is
  f.ReadCopy(*repo);
  CHECK(second->index_reads == 0);
  CHECK(second->backup_reads == 0);
  CHECK(repo->MetadataCacheStats()->misses == 0);
  // The chunks are where the cached index says.
  auto m = repo->LoadManifest(BackupRef{"vm1", f.id});
  auto fc = repo->LoadFileChunks(BackupRef{"vm1", f.id}, m->files[0]);
  REQUIRE(fc.ok());
  std::string raw;
  REQUIRE(repo->ReadChunk(fc->digests[7], &raw).ok());
  CHECK(raw == test::ReadAll(f.dir / "vm/disk.raw").substr(7 * kChunk, kChunk));

  SECTION("another repository with the same id elsewhere does not see them") {
    REQUIRE(std::system(("cp -a " + f.repo_path + " " + f.dir / "copy").c_str()) == 0);
    RepoOptions o;
    o.env = Env::Default();
    o.password = Fixture::Password();
    o.object_cache = cache->get();
    auto* b = new CountingBackend(f.dir / "copy", Env::Default());
    auto other = Repository::Open(std::unique_ptr<Backend>(b), o);
    REQUIRE(other.ok());
    CHECK(b->index_reads >= 1);
  }
}

TEST_CASE("copies of deleted objects go, a damaged copy is read again", "[metadata_cache]") {
  Fixture f;
  auto cache = MetadataCache::Open(f.dir / "cache");
  REQUIRE(cache.ok());
  {
    auto repo = f.Open(cache->get(), nullptr);
    f.ReadCopy(*repo);
  }
  size_t before = (*cache)->Keys("").size();
  CHECK(before >= 4);

  SECTION("forget + prune: the copies of the forgotten backup and the replaced index go") {
    auto repo = f.Open(nullptr, nullptr);
    ForgetOptions fo;
    fo.copies = {"vm1@" + f.id};
    REQUIRE(RunForget(*repo, fo).ok());
    PruneOptions po;
    po.max_unused = 0;
    REQUIRE(RunPrune(*repo, po).ok());
    auto again = f.Open(cache->get(), nullptr);  // starts from its copies, stale ones too
    REQUIRE(again->Refresh().ok());              // lists index/
    (void)again->ListVms();                      // lists backups/
    for (const std::string& k : (*cache)->Keys("")) {
      CHECK(k.find("/backups/") == std::string::npos);
    }
    CHECK((*cache)->Keys("").size() < before);
  }

  SECTION("a damaged copy is dropped and the object read from the repository") {
    std::string key;
    for (const std::string& k : (*cache)->Keys("")) {
      if (k.find("/index/") != std::string::npos) key = k;
    }
    REQUIRE(!key.empty());
    cache->reset();  // close, damage the copy with RocksDB itself, reopen
    {
      rocksdb::DB* db = nullptr;
      REQUIRE(rocksdb::DB::Open(rocksdb::Options(), f.dir / "cache/metadata", &db).ok());
      std::string v;
      REQUIRE(db->Get(rocksdb::ReadOptions(), key, &v).ok());
      v[v.size() / 2] ^= 1;
      REQUIRE(db->Put(rocksdb::WriteOptions(), key, v).ok());
      delete db;
    }
    auto reopened = MetadataCache::Open(f.dir / "cache");
    REQUIRE(reopened.ok());
    CountingBackend* counting = nullptr;
    auto repo = f.Open(reopened->get(), &counting);
    CHECK(counting->index_reads == 1);  // the damaged copy, read again from the repository
    f.ReadCopy(*repo);
    std::string copy;
    CHECK((*reopened)->Get(key, &copy));  // stored again, whole
  }
}

TEST_CASE("an agent started from its copies still reads a copy made since", "[metadata_cache]") {
  Fixture f;
  auto cache = MetadataCache::Open(f.dir / "cache");
  REQUIRE(cache.ok());
  { f.ReadCopy(*f.Open(cache->get(), nullptr)); }
  // Meanwhile another data agent backs up new data (a new index object).
  test::WriteFile(f.dir / "vm/disk.raw", test::RandomBytes(64 * kChunk, 6));
  std::string second_id;
  {
    auto repo = f.Open(nullptr, nullptr);
    auto b = RunBackup(*repo, BackupOptions{"vm1", f.dir / "vm"});
    REQUIRE(b.ok());
    second_id = b->manifest.id;
  }
  auto repo = f.Open(cache->get(), nullptr);  // from the copies: knows neither
  auto m = repo->LoadManifest(BackupRef{"vm1", second_id});
  REQUIRE(m.ok());
  auto fc = repo->LoadFileChunks(BackupRef{"vm1", second_id}, m->files[0]);
  REQUIRE(fc.ok());
  std::string raw;
  REQUIRE(repo->ReadChunk(fc->digests[3], &raw).ok());  // unknown: the newer index objects are listed
  CHECK(raw == test::ReadAll(f.dir / "vm/disk.raw").substr(3 * kChunk, kChunk));
}

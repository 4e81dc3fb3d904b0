// The on-disk chunk index (cache/chunk_table_db.h): what it holds survives a restart, a
// rebuild replaces it whole, leftovers of a cut-short rebuild and a damaged header are
// dropped, processes that share a cache directory get their own slot, and a repository
// that keeps its index on disk never dedups against chunks a prune removed meanwhile.
#include <catch2/catch.hpp>

#include <rocksdb/db.h>

#include "cache/chunk_table_db.h"
#include "store/backend/local_backend.h"
#include "store/backup.h"
#include "store/chunk_index.h"
#include "store/forget.h"
#include "store/prune.h"
#include "store/verify.h"
#include "test/test_util.h"

using namespace lm;

namespace {
const std::string kKey(32, 'a');

IndexFileContents Contents(const std::string& seed, int packs = 2, int per_pack = 5) {
  IndexFileContents c;
  for (int p = 0; p < packs; p++) {
    std::vector<PackEntry> entries;
    for (int i = 0; i < per_pack; i++) {
      entries.push_back(PackEntry{Digest::Of(seed + std::to_string(p * 100 + i)), 16u + i * 1000u, 900u + i,
                                  1000u + i, i % 2 ? Codec::kZstd : Codec::kNone});
    }
    c.packs.push_back({RandomHex(16), entries});
  }
  return c;
}

std::unique_ptr<ChunkTable> Open(const std::string& cache, int slots = 4) {
  DiskChunkTableOptions o;
  o.slots = slots;
  auto t = OpenDiskChunkTable(cache, kKey, o);
  REQUIRE(t.ok());
  return std::move(t).value();
}

void CheckHolds(const ChunkTable& t, const IndexFileContents& c) {
  for (auto& [id, entries] : c.packs) {
    CHECK(t.HasPack(id));
    for (const PackEntry& e : entries) {
      ChunkLocation loc;
      PackId pack;
      REQUIRE(t.Find(e.digest, &loc, &pack));
      CHECK(pack == id);
      CHECK(loc.offset == e.offset);
      CHECK(loc.stored_len == e.stored_len);
      CHECK(loc.raw_len == e.raw_len);
      CHECK(loc.codec == e.codec);
    }
  }
}
}  // namespace

TEST_CASE("the disk chunk table holds sources, entries and packs across a reopen", "[index][disk]") {
  test::TempDir dir;
  IndexFileContents a = Contents("a"), b = Contents("b", 1, 3);
  {
    auto t = Open(dir.path());
    REQUIRE(t->AddSource("index/a.idx", a).ok());
    REQUIRE(t->AddSource("index/b.idx", b).ok());
    REQUIRE(t->AddBadSource("index/bad.idx", "index/bad.idx: checksum mismatch").ok());
    CheckHolds(*t, a);
  }
  auto t = Open(dir.path());
  CHECK(t->Describe() == dir / ("chunk-index/" + kKey));
  CheckHolds(*t, a);
  CheckHolds(*t, b);
  CHECK(t->size() == 13);
  CHECK(t->Sources() == std::vector<std::string>{"index/a.idx", "index/b.idx", "index/bad.idx"});
  CHECK(t->BadSources() == std::vector<std::string>{"index/bad.idx: checksum mismatch"});
  CHECK(t->HasSource("index/b.idx"));
  CHECK_FALSE(t->HasSource("index/c.idx"));
  CHECK_FALSE(t->Find(Digest::Of("nowhere"), nullptr, nullptr));
  CHECK_FALSE(t->HasPack(RandomHex(16)));
  size_t seen = 0;
  t->ForEach([&](const PackId& pack, const PackEntry& e) {
    ChunkLocation loc;
    PackId found;
    CHECK((t->Find(e.digest, &loc, &found) && found == pack && loc.offset == e.offset));
    return ++seen < 5;  // stops when told
  });
  CHECK(seen == 5);
  IndexFileContents bad_pack;
  bad_pack.packs.push_back({"not-hex", {}});
  CHECK(t->AddSource("index/x.idx", bad_pack).code() == Code::kCorrupt);
}

TEST_CASE("a rebuild replaces the disk table whole, a cut-short one leaves nothing", "[index][disk]") {
  test::TempDir dir;
  IndexFileContents old = Contents("old"), fresh = Contents("fresh");
  {
    auto t = Open(dir.path());
    REQUIRE(t->AddSource("index/old.idx", old).ok());
    {
      auto failed = t->NewGeneration();  // a rebuild that failed: dropped with its table
      REQUIRE(failed.ok());
      REQUIRE((*failed)->AddSource("index/fresh.idx", fresh).ok());
    }
    auto next = t->NewGeneration();
    REQUIRE(next.ok());
    CHECK((*next)->size() == 0);
    REQUIRE((*next)->AddSource("index/fresh.idx", fresh).ok());
    CheckHolds(*t, old);  // readers keep the old table until the new one is committed
    CHECK_FALSE(t->Find(fresh.packs[0].second[0].digest, nullptr, nullptr));
    REQUIRE((*next)->Commit().ok());
    t.reset();  // the replaced table lets its keys go
    CheckHolds(**next, fresh);
    CHECK((*next)->Sources() == std::vector<std::string>{"index/fresh.idx"});
  }
  {
    auto t = Open(dir.path());
    CheckHolds(*t, fresh);
    CHECK(t->size() == 10);
    CHECK_FALSE(t->HasPack(old.packs[0].first));
  }
  // A rebuild cut short by a crash: keys of a generation that never became current.
  {
    rocksdb::DB* raw = nullptr;
    REQUIRE(rocksdb::DB::Open(rocksdb::Options(), dir / ("chunk-index/" + kKey), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string stray = std::string("s") + std::string("\0\0\0\x09", 4) + "index/stray.idx";
    REQUIRE(db->Put(rocksdb::WriteOptions(), stray, std::string(1, '\0')).ok());
  }
  auto t = Open(dir.path());
  CHECK(t->Sources() == std::vector<std::string>{"index/fresh.idx"});
  auto next = t->NewGeneration();
  REQUIRE(next.ok());
  CHECK((*next)->Sources().empty());  // whatever number it gets, nothing of the stray is there
}

TEST_CASE("a disk table with a damaged header starts empty, processes get slots", "[index][disk]") {
  test::TempDir dir;
  {
    auto t = Open(dir.path());
    REQUIRE(t->AddSource("index/a.idx", Contents("a")).ok());
  }
  {
    rocksdb::DB* raw = nullptr;
    REQUIRE(rocksdb::DB::Open(rocksdb::Options(), dir / ("chunk-index/" + kKey), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    REQUIRE(db->Put(rocksdb::WriteOptions(), "M", "garbage").ok());
  }
  auto first = Open(dir.path(), 2);
  CHECK(first->Sources().empty());  // rebuilt from the repository by whoever uses it
  auto second = Open(dir.path(), 2);  // the first slot is held (one RocksDB per process)
  CHECK(second->Describe() == dir / ("chunk-index/" + kKey + "-2"));
  DiskChunkTableOptions two;
  two.slots = 2;
  CHECK(OpenDiskChunkTable(dir.path(), kKey, two).status().code() == Code::kBusy);
  auto fallback = DiskChunkTableOpener(dir.path(), two)(kKey);
  REQUIRE(fallback.ok());
  CHECK((*fallback)->Describe() == "memory");
  CHECK(OpenDiskChunkTable(dir.path(), "../x", two).status().code() == Code::kInvalid);
}

namespace {
// Counts reads of index objects.
class IndexReadCounter : public LocalBackend {
 public:
  using LocalBackend::LocalBackend;
  Result<std::string> ReadAll(const std::string& name) override {
    if (name.rfind("index/", 0) == 0) index_reads++;
    return LocalBackend::ReadAll(name);
  }
  int index_reads = 0;
};
}  // namespace

TEST_CASE("a repository with its index on disk loads only new index objects, and forgets pruned chunks",
          "[index][disk][prune]") {
  test::TempDir dir;
  const std::string repo_path = dir / "repo", cache = dir / "cache";
  REQUIRE(Repository::Init(repo_path, 4096, Env::Default()).ok());
  REQUIRE(MkdirAll(dir / "vm").ok());
  auto open = [&](int* index_reads = nullptr, bool on_disk = true) {
    RepoOptions o;
    o.env = Env::Default();
    if (on_disk) o.chunk_table = DiskChunkTableOpener(cache);
    auto backend = std::make_unique<IndexReadCounter>(repo_path, Env::Default());
    auto* counter = backend.get();
    auto r = Repository::Open(std::move(backend), o);
    REQUIRE(r.ok());
    if (index_reads) *index_reads = counter->index_reads;
    return std::move(r).value();
  };
  auto backup = [&](Repository& repo, const std::string& disk) {
    test::WriteFile(dir / "vm/disk.raw", disk);
    BackupOptions o{"vm1", dir / "vm"};
    o.pack_target_bytes = 1 << 20;
    auto r = RunBackup(repo, o);
    INFO(r.status().message());
    REQUIRE(r.ok());
    return r->manifest.id;
  };
  const std::string first = test::RandomBytes(256 << 10, 1), second = test::RandomBytes(256 << 10, 2);
  int reads = -1;
  {
    auto repo = open(&reads);
    CHECK(reads == 0);
    backup(*repo, first);
    CHECK(repo->index().Describe().find("/chunk-index/") != std::string::npos);
  }
  {
    auto repo = open(&reads);
    CHECK(reads == 0);  // its own index objects: the backup put them in the table as it wrote them
    CHECK(repo->index().size() == 64);
    backup(*repo, second);
  }
  {
    // Elsewhere (another host, or a process with its index in memory) the first copy goes;
    // prune deletes its chunks and replaces the index objects.
    auto repo = open(nullptr, false);
    ForgetOptions fo;
    fo.policy.last = 1;
    REQUIRE(RunForget(*repo, fo).ok());
    PruneOptions po;
    po.max_unused = 0;
    REQUIRE(RunPrune(*repo, po).ok());
  }
  // This cache's table predates the prune: it would find the first copy's chunks and store
  // nothing for them. It must see the index objects it loaded are gone, rebuild, and store
  // them again.
  auto repo = open();
  CHECK(repo->index().size() == 64);
  CHECK_FALSE(repo->index().Contains(Digest::Of(first.substr(0, 4096))));
  backup(*repo, first);
  auto v = RunVerify(*repo, VerifyOptions{true});
  REQUIRE(v.ok());
  for (auto& e : v->errors) FAIL_CHECK(e);
  CHECK(v->damaged_chunks.empty());
}

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "base/env_wrapper.h"
#include "cache/chunk_source.h"
#include "store/backup.h"
#include "test/test_util.h"

using namespace lm;

namespace {
constexpr uint32_t kChunk = 16384;

struct Fixture {
  test::TempDir dir;
  std::string disk;
  std::unique_ptr<DelayedReadEnv> slow;  // before repo: it outlives the repository
  std::unique_ptr<Repository> repo;
  std::unique_ptr<ReadCache> cache;
  FileChunks fc;

  explicit Fixture(uint32_t latency_ms = 0) {
    REQUIRE(Repository::Init(dir / "repo", kChunk, Env::Default()).ok());
    REQUIRE(MkdirAll(dir / "vm").ok());
    // 16 chunks: random, then two all-zero chunks, then text.
    disk = test::RandomBytes(6 * kChunk, 3) + std::string(2 * kChunk, '\0') +
           test::TextBytes(8 * kChunk - 100);
    test::WriteFile(dir / "vm/disk.raw", disk);
    RepoOptions o = test::DefaultRepoOptions();
    if (latency_ms) {
      slow = std::make_unique<DelayedReadEnv>(Env::Default(), latency_ms, "/packs/");
      o.env = slow.get();
    }
    auto r = Repository::Open(dir / "repo", o);
    REQUIRE(r.ok());
    repo = std::move(r).value();
    auto b = RunBackup(*repo, BackupOptions{"vm", dir / "vm"});
    REQUIRE(b.ok());
    auto c = ReadCache::Open(CacheOptions{Env::Default(), dir / "cache", 64 * kChunk, kChunk});
    REQUIRE(c.ok());
    cache = std::move(c).value();
    BackupRef ref{"vm", b->manifest.id};
    auto f = repo->LoadFileChunks(ref, b->manifest.files[0]);
    REQUIRE(f.ok());
    fc = *f;
  }
  uint64_t fetched() const { return repo->counters().chunks_read.load(); }
  // The repository again, its pack reads counted in *counter.
  std::unique_ptr<Repository> OpenCounting(test::PackReadCounter** counter) {
    *counter = new test::PackReadCounter(dir / "repo", Env::Default());
    auto r = Repository::Open(std::unique_ptr<Backend>(*counter), test::DefaultRepoOptions());
    REQUIRE(r.ok());
    return std::move(r).value();
  }
};
}  // namespace

TEST_CASE("reads across chunk boundaries return the file's bytes", "[chunk_source]") {
  Fixture f;
  ChunkSource src(*f.repo, *f.cache);
  for (auto [off, len] : std::vector<std::pair<uint64_t, size_t>>{
           {0, 10}, {kChunk - 5, 10}, {5 * kChunk + 7, 3 * kChunk}, {0, f.disk.size()},
           {f.disk.size() - 50, 50}}) {
    std::string out(len, 'x');
    REQUIRE(src.Read(f.fc, "t", off, len, out.data()).ok());
    CHECK(out == f.disk.substr(off, len));
  }
  CHECK(f.fetched() == 14);  // every non-zero chunk once; the zero chunks never
}

TEST_CASE("concurrent misses on one chunk fetch it once", "[chunk_source]") {
  Fixture f(50);  // a slow repository widens the race
  ChunkSource src(*f.repo, *f.cache);
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int t = 0; t < 8; t++) {
    ts.emplace_back([&, t] {
      std::string out(100, '\0');
      if (!src.Read(f.fc, "t", 3 * kChunk + t * 100, 100, out.data()).ok() ||
          out != f.disk.substr(3 * kChunk + t * 100, 100)) {
        bad++;
      }
    });
  }
  for (auto& t : ts) t.join();
  CHECK(bad == 0);
  CHECK(f.fetched() == 1);
  CHECK(src.Stats().joined_fetches >= 1);
}

TEST_CASE("prefetched chunks are then served without fetching", "[chunk_source]") {
  Fixture f;
  {
    ChunkSource src(*f.repo, *f.cache);
    src.Prefetch(f.fc.digests, "t");
    src.Drain();
  }
  uint64_t before = f.fetched();
  CHECK(before == 14);
  ChunkSource src(*f.repo, *f.cache);
  std::string out(f.disk.size(), '\0');
  REQUIRE(src.Read(f.fc, "t", 0, out.size(), out.data()).ok());
  CHECK(out == f.disk);
  CHECK(f.fetched() == before);
}

TEST_CASE("a damaged chunk is an error for its range only, never zeros", "[chunk_source]") {
  Fixture f;
  auto packs = f.repo->ListPacks();
  REQUIRE(packs->size() == 1);
  ChunkLocation loc;
  REQUIRE(f.repo->index().Find(f.fc.digests[2], &loc, nullptr));
  test::FlipByte(f.dir / ("repo/" + PackRelPath((*packs)[0])), loc.offset + kRecordHeaderSize + 10);
  ChunkSource src(*f.repo, *f.cache);
  std::string out(kChunk, 'x');
  Status s = src.Read(f.fc, "vm@1:disk.raw", 2 * kChunk, 100, out.data());
  CHECK(s.code() == Code::kCorrupt);
  CHECK(s.message().find("vm@1:disk.raw") != std::string::npos);
  CHECK_FALSE(f.cache->Contains(f.fc.digests[2]));
  CHECK(src.Read(f.fc, "t", 2 * kChunk, 100, out.data()).code() == Code::kCorrupt);  // still
  REQUIRE(src.Read(f.fc, "t", kChunk, kChunk, out.data()).ok());
  CHECK(out == f.disk.substr(kChunk, kChunk));
  CHECK(src.Stats().fetch_errors == 2);
}


TEST_CASE("a batch of neighbouring chunks is fetched with one read, and a damaged one fails alone",
          "[chunk_source]") {
  Fixture f;
  test::PackReadCounter* counting = nullptr;
  auto repo = f.OpenCounting(&counting);
  ChunkSource src(*repo, *f.cache);
  int before = counting->pack_reads;
  auto r = src.EnsureBatch(f.fc.digests, "t", true);
  CHECK(r.fetched == 14);  // 16 chunks, two of them zero
  CHECK(r.failed == 0);
  CHECK(counting->pack_reads - before == 1);
  src.Drain();
  std::string out(f.disk.size(), 'x');
  int after = counting->pack_reads;
  REQUIRE(src.Read(f.fc, "t", 0, f.disk.size(), out.data()).ok());
  CHECK(out == f.disk);
  CHECK(counting->pack_reads == after);  // all from the cache

  // A damaged chunk in a fresh cache: the batch falls back to single reads, and only the
  // damaged chunk fails.
  auto packs = repo->ListPacks();
  REQUIRE(packs->size() == 1);
  test::TempDir other;
  auto c2 = ReadCache::Open(CacheOptions{Env::Default(), other / "cache", 64 * kChunk, kChunk});
  REQUIRE(c2.ok());
  ChunkSource src2(*repo, **c2);
  test::FlipByte(f.dir / ("repo/" + PackRelPath((*packs)[0])), 100);  // inside the first record
  auto r2 = src2.EnsureBatch(f.fc.digests, "t", false);
  CHECK(r2.failed == 1);
  CHECK(r2.fetched == 13);
}

TEST_CASE("a read over several missing chunks fetches them with one read, a damaged one fails the read",
          "[chunk_source]") {
  Fixture f;
  test::PackReadCounter* counting = nullptr;
  auto repo = f.OpenCounting(&counting);
  ChunkSource src(*repo, *f.cache);
  int before = counting->pack_reads;
  std::string out(5 * kChunk, 'x');
  REQUIRE(src.Read(f.fc, "t", kChunk + 3, out.size(), out.data()).ok());  // touches chunks 1-6
  CHECK(out == f.disk.substr(kChunk + 3, out.size()));
  CHECK(counting->pack_reads - before == 1);  // one per chunk was 6

  // A damaged chunk among them fails the read (never zeros), naming the file's offset.
  test::TempDir other;
  auto c2 = ReadCache::Open(CacheOptions{Env::Default(), other / "cache", 64 * kChunk, kChunk});
  REQUIRE(c2.ok());
  ChunkSource src2(*repo, **c2);
  ChunkLocation loc;
  REQUIRE(repo->index().Find(f.fc.digests[4], &loc, nullptr));
  auto packs = repo->ListPacks();
  test::FlipByte(f.dir / ("repo/" + PackRelPath((*packs)[0])), loc.offset + kRecordHeaderSize + 10);
  Status s = src2.Read(f.fc, "vm@1:disk.raw", 0, 6 * kChunk, out.data());
  CHECK(s.code() == Code::kCorrupt);
  CHECK(s.message().find("vm@1:disk.raw at offset " + std::to_string(4 * kChunk)) != std::string::npos);
  src2.Drain();
  CHECK((**c2).Contains(f.fc.digests[3]));  // its neighbours were good and are cached
}

TEST_CASE("read-ahead fetches a run of queued chunks with one read", "[chunk_source]") {
  Fixture f;
  test::PackReadCounter* counting = nullptr;
  auto repo = f.OpenCounting(&counting);
  ChunkSourceOptions so;
  so.fetch_threads = 1;
  ChunkSource src(*repo, *f.cache, so);
  int before = counting->pack_reads;
  src.Prefetch(f.fc.digests, "t");
  src.Drain();
  CHECK(src.Stats().readahead_fetched == 14);
  CHECK(counting->pack_reads - before == 1);  // 14 chunks, all of them < kReadAheadBatch
}

TEST_CASE("chunks a short gap apart in a pack are read with one read", "[chunk_source]") {
  Fixture f;
  test::PackReadCounter* counting = nullptr;
  auto repo = f.OpenCounting(&counting);
  std::vector<Digest> every_other{f.fc.digests[0], f.fc.digests[2], f.fc.digests[4], f.fc.digests[9]};
  std::vector<std::string> raws;
  int before = counting->pack_reads;
  REQUIRE(repo->ReadChunks(every_other, &raws).ok());
  CHECK(counting->pack_reads - before == 1);
  CHECK(raws[1] == f.disk.substr(2 * kChunk, kChunk));
  CHECK(raws[3] == f.disk.substr(9 * kChunk, kChunk));
}

namespace {
// Cache writes that take their time, counted.
class SlowWriteEnv : public EnvWrapper {
 public:
  using EnvWrapper::EnvWrapper;
  Status PWrite(int fd, const void* buf, size_t n, uint64_t off, const std::string& path) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    writes++;
    return EnvWrapper::PWrite(fd, buf, n, off, path);
  }
  std::atomic<int> writes{0};
};
}  // namespace

TEST_CASE("a pre-stage waits for the cache to take what it fetched: memory stays bounded", "[chunk_source]") {
  Fixture f;
  SlowWriteEnv slow(Env::Default());
  auto c = ReadCache::Open(CacheOptions{&slow, f.dir / "slow-cache", 64 * kChunk, kChunk});
  REQUIRE(c.ok());
  ChunkSourceOptions o;
  o.max_queued_insert_bytes = 2 * kChunk;
  ChunkSource src(*f.repo, **c, o);
  std::vector<Digest> all;
  for (const Digest& d : f.fc.digests)
    if (!d.IsZero()) all.push_back(d);
  REQUIRE(all.size() == 14);
  auto r = src.EnsureBatch(all, "prestage", /*background=*/true);
  CHECK(r.fetched == 14);
  // Back only once no more than two chunks wait: the other twelve are in the cache. (The
  // queue used to take all of them at once: a hydration held the disk in memory.)
  CHECK(slow.writes >= 12);
  src.Drain();
  CHECK(slow.writes == 14);
}

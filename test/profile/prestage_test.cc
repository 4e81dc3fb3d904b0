#include <catch2/catch.hpp>

#include <chrono>
#include <mutex>
#include <thread>

#include "cache/chunk_source.h"
#include "profile/prestage.h"
#include "store/backend/local_backend.h"
#include "store/backup.h"
#include "test/test_util.h"

using namespace lm;

namespace {
constexpr uint32_t kChunk = 16384;

// A slow local backend that records its pack reads: their offsets in order, and how many
// were under way at once.
class SlowRecordingBackend : public LocalBackend {
 public:
  using LocalBackend::LocalBackend;
  Status ReadRange(const std::string& name, uint64_t offset, size_t length, std::string* out) override {
    if (name.rfind("packs/", 0) != 0) return LocalBackend::ReadRange(name, offset, length, out);
    {
      std::lock_guard lock(mu);
      offsets.push_back(offset);
      max_in_flight = std::max(max_in_flight, ++in_flight);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Status s = LocalBackend::ReadRange(name, offset, length, out);
    std::lock_guard lock(mu);
    in_flight--;
    return s;
  }
  std::mutex mu;
  std::vector<uint64_t> offsets;
  int in_flight = 0, max_in_flight = 0;
};

struct Fixture {
  test::TempDir dir;
  SlowRecordingBackend* backend = nullptr;
  std::unique_ptr<Repository> repo;
  std::unique_ptr<ReadCache> cache;
  BackupRef ref;
  FileChunks fc;

  Fixture() {
    REQUIRE(Repository::Init(dir / "repo", kChunk, Env::Default()).ok());
    REQUIRE(MkdirAll(dir / "vm").ok());
    test::WriteFile(dir / "vm/disk.raw", test::RandomBytes(64 * kChunk, 5));  // one pack, file order
    {
      auto plain = Repository::Open(dir / "repo", test::DefaultRepoOptions());
      REQUIRE(plain.ok());
      BackupOptions bo{"vm", dir / "vm"};
      bo.threads = 1;  // one pack, its records in file order
      auto b = RunBackup(**plain, bo);
      REQUIRE(b.ok());
      ref = BackupRef{"vm", b->manifest.id};
    }
    backend = new SlowRecordingBackend(dir / "repo", Env::Default());
    auto r = Repository::Open(std::unique_ptr<Backend>(backend), test::DefaultRepoOptions());
    REQUIRE(r.ok());
    repo = std::move(r).value();
    auto m = repo->LoadManifest(ref);
    REQUIRE(m.ok());
    auto f = repo->LoadFileChunks(ref, m->files[0]);
    REQUIRE(f.ok());
    fc = *f;
    auto c = ReadCache::Open(CacheOptions{Env::Default(), dir / "cache", 128 * kChunk, kChunk});
    REQUIRE(c.ok());
    cache = std::move(c).value();
  }
  // A profile reading chunks [first, first + count) of the disk, range after range.
  static Profile ProfileOf(std::vector<std::pair<uint64_t, uint64_t>> chunk_ranges) {
    ProfileEntry e{"disk.raw", {}, "learned", 0, ""};
    for (auto [first, count] : chunk_ranges) e.ranges.emplace_back(first * kChunk, count * kChunk);
    Profile p;
    p.vm = "vm";
    p.entries.push_back(e);
    return p;
  }
  uint64_t OffsetOf(size_t chunk) const {
    ChunkLocation loc;
    REQUIRE(repo->index().Find(fc.digests[chunk], &loc, nullptr));
    return loc.offset;
  }
};
}  // namespace

TEST_CASE("GroupByRead groups neighbours in a pack into one read, far ones apart", "[prestage]") {
  Fixture f;
  // Chunks 20 apart (320 KiB) are beyond the coalescing gap; 1-3 apart are within it.
  std::vector<Digest> d{f.fc.digests[40], f.fc.digests[0], f.fc.digests[2], f.fc.digests[41],
                        f.fc.digests[20], Digest{}};
  d.back().bytes[0] = 1;  // a digest no index knows
  auto groups = f.repo->GroupByRead(d);
  REQUIRE(groups.size() == 4);
  CHECK(groups[0] == std::vector<size_t>{1, 2});  // pack order: chunks 0 and 2
  CHECK(groups[1] == std::vector<size_t>{4});     // chunk 20
  CHECK(groups[2] == std::vector<size_t>{0, 3});  // chunks 40 and 41
  CHECK(groups[3] == std::vector<size_t>{5});     // unknown, alone
}

TEST_CASE("prestage streams the profile in boot order, one request per run, runs in parallel", "[prestage]") {
  Fixture f;
  // Boot order: chunks 48-51, then 0-3, then 24-27: three runs of one pack, far apart.
  Profile p = Fixture::ProfileOf({{48, 4}, {0, 4}, {24, 4}});
  ChunkSource source(*f.repo, *f.cache);
  SECTION("one fetcher: the runs come in the profile's order") {
    PrestageOptions o;
    o.threads = 1;
    auto sum = Prestage(*f.repo, source, f.ref, p, o);
    REQUIRE(sum.ok());
    CHECK(sum->fetched == 12);
    REQUIRE(f.backend->offsets.size() == 3);
    CHECK(f.backend->offsets[0] == f.OffsetOf(48));
    CHECK(f.backend->offsets[1] == f.OffsetOf(0));
    CHECK(f.backend->offsets[2] == f.OffsetOf(24));
  }
  SECTION("many fetchers: each run is its own request, all under way at once") {
    PrestageOptions o;
    o.threads = 8;
    auto sum = Prestage(*f.repo, source, f.ref, p, o);
    REQUIRE(sum.ok());
    CHECK(sum->fetched == 12);
    CHECK(f.backend->offsets.size() == 3);
    CHECK(f.backend->max_in_flight == 3);
  }
  for (size_t i : {0, 1, 2, 3, 24, 27, 48, 51}) CHECK(f.cache->Contains(f.fc.digests[i]));
  CHECK_FALSE(f.cache->Contains(f.fc.digests[10]));
}

TEST_CASE("hydration reads the rest of the disk in fetches of at most 16 chunks", "[prestage]") {
  Fixture f;
  ChunkSource source(*f.repo, *f.cache);
  PrestageOptions o;
  o.threads = 1;
  o.all = true;
  auto sum = Prestage(*f.repo, source, f.ref, Fixture::ProfileOf({{48, 4}}), o);
  REQUIRE(sum.ok());
  CHECK(sum->fetched == 64);
  // The profile's run whole; the rest (chunks 0-47 and 52-63, one run of the pack) in
  // pieces, so a guest read that meets one waits for 16 chunks at most, not a whole run.
  REQUIRE(f.backend->offsets.size() == 5);
  CHECK(f.backend->offsets[0] == f.OffsetOf(48));
  CHECK(f.backend->offsets[1] == f.OffsetOf(0));
  CHECK(f.backend->offsets[2] == f.OffsetOf(16));
  CHECK(f.backend->offsets[3] == f.OffsetOf(32));
  CHECK(f.backend->offsets[4] == f.OffsetOf(52));
}

TEST_CASE("a guest miss takes over the pre-stager's planned fetch of its chunk", "[prestage]") {
  Fixture f;
  const bool hydrating = GENERATE(false, true);
  // Hydrating, only the first run is the profile's: the others are hydration, which a
  // guest's miss leaves to the pre-stager.
  Profile p = hydrating ? Fixture::ProfileOf({{48, 4}}) : Fixture::ProfileOf({{48, 4}, {0, 4}, {24, 4}});
  ChunkSource source(*f.repo, *f.cache);
  PrestageOptions o;
  o.threads = 1;  // the runs one after the other
  o.all = hydrating;
  Result<PrestageSummary> sum = Status::Invalid("not run");
  std::thread prestager([&] { sum = Prestage(*f.repo, source, f.ref, p, o); });
  for (int i = 0; i < 400; i++) {
    {
      std::lock_guard lock(f.backend->mu);
      if (!f.backend->offsets.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // The pre-stager is reading its first run (chunks 48-51); the guest misses chunk 25, of
  // the third run: its read brings the whole run, and the pre-stager does not fetch it again.
  std::string out(100, '\0');
  REQUIRE(source.Read(f.fc, "t", 25 * kChunk + 7, out.size(), out.data()).ok());
  prestager.join();
  REQUIRE(sum.ok());
  source.Drain();
  for (size_t i : {24, 25, 26, 27, 0, 3, 48, 51}) CHECK(f.cache->Contains(f.fc.digests[i]));
  if (hydrating) {
    CHECK(source.Stats().planned_runs_taken == 0);
    return;
  }
  CHECK(source.Stats().planned_runs_taken == 1);
  CHECK(f.backend->offsets.size() == 3);
}

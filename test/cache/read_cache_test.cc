#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <random>
#include <thread>

#include "cache/read_cache.h"
#include "test/test_util.h"

using namespace lm;

namespace {
constexpr uint32_t kSlot = 16384;

std::unique_ptr<ReadCache> OpenCache(const std::string& dir, uint64_t slots) {
  auto c = ReadCache::Open(CacheOptions{Env::Default(), dir, slots * kSlot, kSlot});
  REQUIRE(c.ok());
  return std::move(c).value();
}

std::string Chunk(int i, size_t len = kSlot) { return test::RandomBytes(len, 1000 + i); }
Digest Id(int i, size_t len = kSlot) { return Digest::Of(Chunk(i, len)); }

std::string ReadBack(ReadCache& c, const Digest& d, uint32_t off, uint32_t len, Status* s) {
  std::string out(len, '\0');
  *s = c.Read(d, off, len, out.data());
  return out;
}
}  // namespace

TEST_CASE("insert and read back whole and unaligned ranges", "[cache]") {
  test::TempDir dir;
  auto c = OpenCache(dir / "c", 8);
  REQUIRE(c->Insert(Id(1), Chunk(1)).ok());
  REQUIRE(c->Insert(Id(2, 5000), Chunk(2, 5000)).ok());  // a short tail chunk
  Status s;
  CHECK(ReadBack(*c, Id(1), 0, kSlot, &s) == Chunk(1));
  CHECK(s.ok());
  CHECK(ReadBack(*c, Id(1), 4000, 9000, &s) == Chunk(1).substr(4000, 9000));
  CHECK(ReadBack(*c, Id(1), 16383, 1, &s) == Chunk(1).substr(16383, 1));
  CHECK(ReadBack(*c, Id(2, 5000), 4090, 910, &s) == Chunk(2, 5000).substr(4090));
  ReadBack(*c, Id(3), 0, 10, &s);
  CHECK(s.code() == Code::kNotFound);
  CacheStats st = c->Stats();
  CHECK(st.hits == 4);
  CHECK(st.misses == 1);
  CHECK(st.entries == 2);
  CHECK(st.used_bytes == kSlot + 5000);
  CHECK(st.bytes_served == kSlot + 9000 + 1 + 910);
  CHECK_FALSE(c->Read(Id(1), kSlot - 1, 2, std::string(2, 0).data()).ok());
}

TEST_CASE("capacity holds and the least recently used entry is evicted", "[cache]") {
  test::TempDir dir;
  auto c = OpenCache(dir / "c", 4);
  for (int i = 0; i < 4; i++) REQUIRE(c->Insert(Id(i), Chunk(i)).ok());
  Status s;
  ReadBack(*c, Id(0), 0, 10, &s);  // 0 becomes the most recent; 1 is now the oldest
  REQUIRE(c->Insert(Id(4), Chunk(4)).ok());
  CHECK(c->Contains(Id(0)));
  CHECK_FALSE(c->Contains(Id(1)));
  REQUIRE(c->Insert(Id(5), Chunk(5)).ok());
  CHECK_FALSE(c->Contains(Id(2)));
  CacheStats st = c->Stats();
  CHECK(st.entries == 4);
  CHECK(st.evictions == 2);
  CHECK(st.used_bytes <= st.capacity_bytes);
  struct stat sb;
  REQUIRE(::stat((dir / "c/data").c_str(), &sb) == 0);
  CHECK(static_cast<uint64_t>(sb.st_size) == 4 * kSlot);
  CHECK(ReadBack(*c, Id(5), 0, kSlot, &s) == Chunk(5));
}

TEST_CASE("pinned entries are never evicted", "[cache]") {
  test::TempDir dir;
  auto c = OpenCache(dir / "c", 2);
  REQUIRE(c->Insert(Id(0), Chunk(0)).ok());
  REQUIRE(c->Insert(Id(1), Chunk(1)).ok());
  REQUIRE(c->Pin(Id(0)).ok());
  REQUIRE(c->Insert(Id(2), Chunk(2)).ok());  // evicts 1, not the pinned 0
  CHECK(c->Contains(Id(0)));
  CHECK_FALSE(c->Contains(Id(1)));
  REQUIRE(c->Pin(Id(2)).ok());
  CHECK(c->Insert(Id(3), Chunk(3)).code() == Code::kNoSpace);
  CHECK(c->Stats().pinned == 2);
  CHECK(c->Stats().insert_failures == 1);
  c->UnpinSession();
  CHECK(c->Insert(Id(3), Chunk(3)).ok());
  CHECK(c->Pin(Id(99)).code() == Code::kNotFound);
}

TEST_CASE("a pin with a deadline survives a restart", "[cache]") {
  test::TempDir dir;
  {
    auto c = OpenCache(dir / "c", 2);
    REQUIRE(c->Insert(Id(0), Chunk(0)).ok());
    REQUIRE(c->Pin(Id(0), ::time(nullptr) + 3600).ok());
  }
  auto c = OpenCache(dir / "c", 2);
  REQUIRE(c->Insert(Id(1), Chunk(1)).ok());
  REQUIRE(c->Insert(Id(2), Chunk(2)).ok());
  CHECK(c->Contains(Id(0)));
  CHECK(c->Stats().pinned == 1);
}

TEST_CASE("the cache persists across a restart and serves without inserts", "[cache]") {
  test::TempDir dir;
  {
    auto c = OpenCache(dir / "c", 16);
    for (int i = 0; i < 10; i++) REQUIRE(c->Insert(Id(i), Chunk(i)).ok());
  }
  auto c = OpenCache(dir / "c", 16);
  CHECK(c->Stats().entries == 10);
  Status s;
  for (int i = 0; i < 10; i++) {
    CHECK(ReadBack(*c, Id(i), 0, kSlot, &s) == Chunk(i));
    CHECK(s.ok());
  }
  CHECK(c->Stats().inserts == 0);
  CHECK(c->Stats().hits == 10);
}

TEST_CASE("a smaller capacity after a restart drops what no longer fits", "[cache]") {
  test::TempDir dir;
  {
    auto c = OpenCache(dir / "c", 8);
    for (int i = 0; i < 8; i++) REQUIRE(c->Insert(Id(i), Chunk(i)).ok());
  }
  auto c = OpenCache(dir / "c", 3);
  CacheStats st = c->Stats();
  CHECK(st.entries == 3);
  CHECK(st.used_bytes <= st.capacity_bytes);
  for (int i = 8; i < 12; i++) REQUIRE(c->Insert(Id(i), Chunk(i)).ok());
  CHECK(c->Stats().entries == 3);
}

TEST_CASE("a damaged cache slot is dropped and reported as a miss", "[cache]") {
  test::TempDir dir;
  auto c = OpenCache(dir / "c", 4);
  REQUIRE(c->Insert(Id(0), Chunk(0)).ok());
  REQUIRE(c->Insert(Id(1), Chunk(1)).ok());
  test::FlipByte(dir / "c/data", kSlot * 0 + 9000);  // slot 0 holds chunk 0
  Status s;
  ReadBack(*c, Id(0), 0, 100, &s);  // a block the damage does not touch still reads
  CHECK(s.ok());
  ReadBack(*c, Id(0), 8192, 4096, &s);
  CHECK(s.code() == Code::kNotFound);
  CHECK_FALSE(c->Contains(Id(0)));
  CHECK(c->Stats().corrupt_dropped == 1);
  CHECK(ReadBack(*c, Id(1), 0, kSlot, &s) == Chunk(1));
  REQUIRE(c->Insert(Id(0), Chunk(0)).ok());  // fetched again
  CHECK(ReadBack(*c, Id(0), 0, kSlot, &s) == Chunk(0));
}

TEST_CASE("one process owns a cache directory, chunk size must match", "[cache]") {
  test::TempDir dir;
  auto c = OpenCache(dir / "c", 4);
  auto second = ReadCache::Open(CacheOptions{Env::Default(), dir / "c", 4 * kSlot, kSlot});
  CHECK(second.status().code() == Code::kBusy);
  c.reset();
  auto other = ReadCache::Open(CacheOptions{Env::Default(), dir / "c", 4 * 32768, 32768});
  CHECK(other.status().code() == Code::kInvalid);
  CHECK(other.status().message().find("--cache-dir") != std::string::npos);
  CHECK_FALSE(ReadCache::Open(CacheOptions{Env::Default(), dir / "d", 100, kSlot}).ok());
}

TEST_CASE("concurrent inserts, reads and evictions never return wrong bytes", "[cache]") {
  test::TempDir dir;
  auto c = OpenCache(dir / "c", 8);
  std::vector<std::string> chunks;
  for (int i = 0; i < 32; i++) chunks.push_back(Chunk(i));
  std::atomic<int> wrong{0}, hits{0};
  auto worker = [&](int seed) {
    std::mt19937 rng(seed);
    std::string out(kSlot, '\0');
    for (int n = 0; n < 3000; n++) {
      int i = rng() % 32;
      Digest d = Digest::Of(chunks[i]);
      uint32_t off = rng() % kSlot, len = 1 + rng() % (kSlot - off);
      if (c->Read(d, off, len, out.data()).ok()) {
        hits++;
        if (std::memcmp(out.data(), chunks[i].data() + off, len) != 0) wrong++;
      } else {
        (void)c->Insert(d, chunks[i]);
      }
    }
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++) ts.emplace_back(worker, t);
  for (auto& t : ts) t.join();
  CHECK(wrong == 0);
  CHECK(hits > 0);
  CHECK(c->Stats().entries <= 8);
  CHECK(c->Stats().corrupt_dropped == 0);
}

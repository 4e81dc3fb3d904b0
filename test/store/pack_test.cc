#include <catch2/catch.hpp>
#include <fcntl.h>
#include <unistd.h>

#include "store/backend/local_backend.h"
#include "store/pack.h"
#include "test/test_util.h"

using namespace lm;

namespace {
struct Written {
  PackId id;
  std::vector<PackEntry> entries;
  std::vector<std::string> raws;
};

Written WritePack(const std::string& repo, int n) {
  LocalBackend backend(repo, Env::Default());
  auto w = PackWriter::Create(backend);
  REQUIRE(w.ok());
  Written out;
  for (int i = 0; i < n; i++) {
    std::string raw = i % 2 ? test::RandomBytes(5000 + i, i) : test::TextBytes(7000 + i);
    std::string stored;
    Codec c = CompressChunk(raw, 3, &stored);
    REQUIRE(w->Append(Digest::Of(raw), c, raw.size(), stored).ok());
    out.raws.push_back(raw);
  }
  REQUIRE(w->Finish().ok());
  out.id = w->id();
  out.entries = w->entries();
  return out;
}
}  // namespace

TEST_CASE("A pack describes itself and every record reads back", "[pack]") {
  test::TempDir dir;
  Written p = WritePack(dir.path(), 20);
  std::string path = dir / PackRelPath(p.id);
  LocalBackend backend(dir.path(), Env::Default());
  auto table = ReadPackTable(backend, p.id);
  REQUIRE(table.ok());
  REQUIRE(table->size() == 20);
  for (size_t i = 0; i < table->size(); i++) {
    CHECK((*table)[i].digest == p.entries[i].digest);
    CHECK((*table)[i].offset == p.entries[i].offset);
    std::string raw;
    REQUIRE(ReadChunkRecord(backend, *RepoCrypto::None(), p.id, (*table)[i], &raw).ok());
    CHECK(raw == p.raws[i]);
  }
  CHECK(backend.ListPartial("")->empty());
}

TEST_CASE("A flipped byte in a record is detected", "[pack]") {
  test::TempDir dir;
  Written p = WritePack(dir.path(), 4);
  std::string path = dir / PackRelPath(p.id);
  const PackEntry& e = p.entries[2];
  test::FlipByte(path, e.offset + kRecordHeaderSize + e.stored_len / 2);
  LocalBackend backend(dir.path(), Env::Default());
  std::string raw;
  Status s = ReadChunkRecord(backend, *RepoCrypto::None(), p.id, e, &raw);
  CHECK(s.code() == Code::kCorrupt);
  CHECK(s.message().find(path) != std::string::npos);
  // Neighbours are unaffected.
  CHECK(ReadChunkRecord(backend, *RepoCrypto::None(), p.id, p.entries[1], &raw).ok());
  CHECK(ReadChunkRecord(backend, *RepoCrypto::None(), p.id, p.entries[3], &raw).ok());
}

TEST_CASE("A flipped byte in a record header is detected", "[pack]") {
  test::TempDir dir;
  Written p = WritePack(dir.path(), 3);
  std::string path = dir / PackRelPath(p.id);
  test::FlipByte(path, p.entries[1].offset + 20);  // inside the digest
  LocalBackend backend(dir.path(), Env::Default());
  std::string raw;
  CHECK(ReadChunkRecord(backend, *RepoCrypto::None(), p.id, p.entries[1], &raw).code() == Code::kCorrupt);
}

TEST_CASE("Truncated or garbled pack tables are errors", "[pack]") {
  test::TempDir dir;
  Written p = WritePack(dir.path(), 5);
  std::string path = dir / PackRelPath(p.id);
  LocalBackend backend(dir.path(), Env::Default());
  SECTION("truncated") {
    REQUIRE(::truncate(path.c_str(), 1000) == 0);
    auto t = ReadPackTable(backend, p.id);
    CHECK(t.status().code() == Code::kCorrupt);
  }
  SECTION("table byte flipped") {
    auto size = test::ReadAll(path).size();
    test::FlipByte(path, size - kPackFooterSize - 10);
    CHECK(ReadPackTable(backend, p.id).status().code() == Code::kCorrupt);
  }
  SECTION("tiny file") {
    test::WriteFile(path, "LMPACK");
    CHECK(ReadPackTable(backend, p.id).status().code() == Code::kCorrupt);
  }
}

TEST_CASE("An abandoned pack writer leaves nothing behind", "[pack]") {
  test::TempDir dir;
  LocalBackend backend(dir.path(), Env::Default());
  {
    auto w = PackWriter::Create(backend);
    REQUIRE(w.ok());
    REQUIRE(w->Append(Digest::Of("x"), Codec::kNone, 1, std::string(5 << 20, 'x')).ok());
    CHECK(backend.ListPartial("packs/")->size() == 1);  // being written, invisible
    CHECK(backend.List("packs/")->empty());
  }
  CHECK(backend.ListPartial("")->empty());
  CHECK(backend.List("")->empty());
}

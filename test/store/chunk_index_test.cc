#include <catch2/catch.hpp>

#include "store/backend/local_backend.h"
#include "store/chunk_index.h"
#include "test/test_util.h"

using namespace lm;

namespace {
IndexFileContents Sample() {
  IndexFileContents c;
  for (int p = 0; p < 3; p++) {
    std::vector<PackEntry> entries;
    for (int i = 0; i < 10; i++) {
      entries.push_back(PackEntry{Digest::Of(std::to_string(p * 100 + i)), 16u + i * 1000u,
                                  900u + i, 1000u + i, i % 2 ? Codec::kZstd : Codec::kNone});
    }
    c.packs.push_back({RandomHex(16), entries});
  }
  return c;
}
}  // namespace

TEST_CASE("Index files round-trip", "[index]") {
  IndexFileContents c = Sample();
  auto back = DecodeIndexFile(EncodeIndexFile(c), "x.idx");
  REQUIRE(back.ok());
  REQUIRE(back->packs.size() == 3);
  for (size_t p = 0; p < 3; p++) {
    CHECK(back->packs[p].first == c.packs[p].first);
    REQUIRE(back->packs[p].second.size() == 10);
    for (size_t i = 0; i < 10; i++) {
      const PackEntry &a = back->packs[p].second[i], &b = c.packs[p].second[i];
      CHECK(a.digest == b.digest);
      CHECK(a.offset == b.offset);
      CHECK(a.stored_len == b.stored_len);
      CHECK(a.raw_len == b.raw_len);
      CHECK(a.codec == b.codec);
    }
  }
}

TEST_CASE("Every damaged byte of an index file is detected", "[index]") {
  std::string data = EncodeIndexFile(Sample());
  for (size_t pos = 0; pos < data.size(); pos += 37) {
    std::string bad = data;
    bad[pos] ^= 1;
    CHECK_FALSE(DecodeIndexFile(bad, "x.idx").ok());
  }
  CHECK(DecodeIndexFile(data.substr(0, data.size() - 1), "x.idx").status().code() ==
        Code::kCorrupt);
  CHECK(DecodeIndexFile("", "x.idx").status().message().find("x.idx") == 0);
}

TEST_CASE("ChunkIndex loads new files, skips damaged ones and reports them", "[index]") {
  test::TempDir dir;
  REQUIRE(MkdirAll(dir / "index").ok());
  IndexFileContents a = Sample(), b = Sample();
  b.packs.resize(1);
  b.packs[0].second = {PackEntry{Digest::Of("only-in-b"), 16, 1, 1, Codec::kNone}};
  test::WriteFile(dir / "index/a.idx", EncodeIndexFile(a));
  test::WriteFile(dir / "index/bad.idx", "garbage");
  ChunkIndex idx;
  bool bad = false;
  LocalBackend backend(dir.path(), Env::Default());
  REQUIRE(idx.LoadNew(backend, *RepoCrypto::None(), &bad).ok());
  CHECK(bad);
  CHECK(idx.size() == 30);
  REQUIRE(idx.BadFiles().size() == 1);
  CHECK(idx.BadFiles()[0].find("bad.idx") != std::string::npos);
  CHECK_FALSE(idx.Contains(Digest::Of("only-in-b")));
  test::WriteFile(dir / "index/b.idx", EncodeIndexFile(b));
  REQUIRE(idx.LoadNew(backend, *RepoCrypto::None(), &bad).ok());
  CHECK_FALSE(bad);  // the bad file is not re-reported
  ChunkLocation loc;
  PackId pack;
  REQUIRE(idx.Find(Digest::Of("only-in-b"), &loc, &pack));
  CHECK(pack == b.packs[0].first);
  CHECK(idx.Packs().size() == 4);
}

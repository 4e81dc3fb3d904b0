#include <unistd.h>

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
  for (auto* c : {&a, &b})
    for (auto& [id, entries] : c->packs) CHECK(idx.HasPack(id));
  CHECK_FALSE(idx.HasPack(RandomHex(16)));
  // A prune deleted a loaded object: the next full listing says so, and a reload forgets it.
  bool gone = false;
  REQUIRE(idx.LoadNew(backend, *RepoCrypto::None(), &bad, &gone).ok());
  CHECK_FALSE(gone);
  REQUIRE(::unlink((dir / "index/a.idx").c_str()) == 0);
  REQUIRE(idx.LoadNew(backend, *RepoCrypto::None(), &bad, &gone).ok());
  CHECK(gone);
  CHECK(idx.size() == 31);
  REQUIRE(idx.Reload(backend, *RepoCrypto::None(), &bad).ok());
  CHECK(idx.size() == 1);
  CHECK_FALSE(idx.HasPack(a.packs[0].first));
  CHECK(idx.BadFiles().size() == 1);  // bad.idx is still there, and still bad
}

TEST_CASE("index object names carry their time, older random ids and future times do not count", "[index]") {
  const int64_t now = 1764150000LL * 1000000000LL;  // 2025-11-26
  std::string name = NewIndexName(now);
  CHECK(name.size() == 6 + 32 + 4);
  CHECK(IndexNameTime(name, now) == now);
  CHECK(NewIndexName(now + 1) > name);  // names grow with time
  CHECK(IndexNameTime("index/" + RandomHex(16).replace(0, 1, "f") + ".idx", now) == 0);  // a random id
  CHECK(IndexNameTime(NewIndexName(now + 2 * 86400LL * 1000000000LL), now) == 0);     // two days ahead
  CHECK(IndexNameTime(NewIndexName(1000), now) == 0);                                  // before 2020
  CHECK(IndexNameTime("index/" + std::string(32, 'g') + ".idx", now) == 0);
}

namespace {
// Records how index objects are listed.
class ListRecorder : public LocalBackend {
 public:
  using LocalBackend::LocalBackend;
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override {
    if (prefix == "index/") full_lists++;
    return LocalBackend::List(prefix);
  }
  Result<std::vector<ObjectInfo>> ListAfter(const std::string& prefix, const std::string& start_after) override {
    after.push_back(start_after);
    auto all = LocalBackend::List(prefix);  // not List(): counted as a full listing
    std::vector<ObjectInfo> out;
    for (auto& o : *all)
      if (o.name > start_after) out.push_back(o);
    return out;
  }
  int full_lists = 0;
  std::vector<std::string> after;
};
}  // namespace

TEST_CASE("LoadNewest lists only what is named after the newest index known, less an hour", "[index]") {
  test::TempDir dir;
  REQUIRE(MkdirAll(dir / "index").ok());
  const int64_t hour = 3600LL * 1000000000LL, now = 1764150000LL * 1000000000LL;
  IndexFileContents a = Sample(), b = Sample(), c = Sample();
  for (auto* x : {&b, &c}) x->packs.resize(1);
  b.packs[0].second = {PackEntry{Digest::Of("new"), 16, 1, 1, Codec::kNone}};
  c.packs[0].second = {PackEntry{Digest::Of("clock-behind"), 16, 1, 1, Codec::kNone}};
  test::WriteFile(dir / NewIndexName(now - 5 * hour), EncodeIndexFile(a));
  ListRecorder backend(dir.path(), Env::Default());
  ChunkIndex idx;
  REQUIRE(idx.LoadNew(backend, *RepoCrypto::None()).ok());
  CHECK(idx.size() == 30);
  test::WriteFile(dir / NewIndexName(now), EncodeIndexFile(b));
  test::WriteFile(dir / NewIndexName(now - 7 * hour), EncodeIndexFile(c));  // a writer whose clock lags
  int full = backend.full_lists;
  REQUIRE(idx.LoadNewest(backend, *RepoCrypto::None(), now).ok());
  CHECK(backend.full_lists == full);
  REQUIRE(backend.after.size() == 1);
  CHECK(backend.after[0] == NewIndexName(now - 6 * hour).substr(0, 6 + 16));
  CHECK(idx.Contains(Digest::Of("new")));
  CHECK_FALSE(idx.Contains(Digest::Of("clock-behind")));  // named before the start: a full listing finds it
  REQUIRE(idx.LoadNew(backend, *RepoCrypto::None()).ok());
  CHECK(idx.Contains(Digest::Of("clock-behind")));
}

#include <catch2/catch.hpp>

#include "store/backup.h"
#include "store/backend/local_backend.h"
#include "store/verify.h"
#include "test/test_util.h"

using namespace lm;

namespace {
struct Fixture {
  test::TempDir dir;
  std::string repo_path = dir / "repo";
  std::string id;
  Fixture() {
    REQUIRE(Repository::Init(repo_path, 4096, Env::Default()).ok());
    REQUIRE(MkdirAll(dir / "vm").ok());
    test::WriteFile(dir / "vm/disk.raw", test::RandomBytes(256 * 1024, 11));
    test::WriteFile(dir / "vm/other.raw", test::TextBytes(64 * 1024));
    auto repo = Open();
    auto r = RunBackup(*repo, BackupOptions{"vm1", dir / "vm"});
    REQUIRE(r.ok());
    id = r->manifest.id;
  }
  std::unique_ptr<Repository> Open() {
    auto r = Repository::Open(repo_path, test::DefaultRepoOptions());
    REQUIRE(r.ok());
    return std::move(r).value();
  }
  VerifyReport Verify(bool read_data) {
    auto repo = Open();
    auto r = RunVerify(*repo, VerifyOptions{read_data});
    REQUIRE(r.ok());
    return *r;
  }
  std::string OnlyPack() {
    auto packs = Open()->ListPacks();
    REQUIRE(packs->size() == 1);
    return repo_path + "/" + PackRelPath((*packs)[0]);
  }
};
}  // namespace

TEST_CASE("a clean repository verifies", "[verify]") {
  Fixture f;
  VerifyReport r = f.Verify(true);
  CHECK(r.ok());
  CHECK(r.backups == 1);
  CHECK(r.chunks_read == r.chunks);
  CHECK(r.chunks == 64 + 16);
}

TEST_CASE("a flipped data byte is found by read-data and names its users", "[verify]") {
  Fixture f;
  test::FlipByte(f.OnlyPack(), 100000);
  CHECK(f.Verify(false).ok());  // structure alone cannot see it
  VerifyReport r = f.Verify(true);
  CHECK_FALSE(r.ok());
  REQUIRE(r.damaged_chunks.size() == 1);
  REQUIRE(r.damaged_chunks[0].users.size() == 1);
  CHECK(r.damaged_chunks[0].users[0].find("vm1@" + f.id + ":disk.raw") == 0);
}

TEST_CASE("structural damage is named", "[verify]") {
  Fixture f;
  SECTION("truncated pack") {
    std::string pack = f.OnlyPack();
    std::string data = test::ReadAll(pack);
    test::WriteFile(pack, data.substr(0, data.size() / 2));
    VerifyReport r = f.Verify(false);
    CHECK_FALSE(r.ok());
    CHECK(!r.errors.empty());
    CHECK(f.Verify(true).damaged_chunks.size() > 0);
  }
  SECTION("missing pack") {
    REQUIRE(::unlink(f.OnlyPack().c_str()) == 0);
    VerifyReport r = f.Verify(false);
    CHECK(r.damaged_chunks.size() == r.chunks);
    CHECK_FALSE(r.damaged_chunks[0].users.empty());
  }
  SECTION("garbled backup.json") {
    test::FlipByte(f.repo_path + "/backups/vm1/" + f.id + "/backup.json", 30);
    VerifyReport r = f.Verify(false);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].find("backup.json") != std::string::npos);
  }
  SECTION("garbled file index") {
    test::FlipByte(f.repo_path + "/backups/vm1/" + f.id + "/files/0.fidx", 70);
    VerifyReport r = f.Verify(false);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].find("0.fidx") != std::string::npos);
  }
  SECTION("garbled index file: reported, and chunks still found through the pack") {
    auto names = ListDir(f.repo_path + "/index");
    REQUIRE(names->size() == 1);
    test::FlipByte(f.repo_path + "/index/" + (*names)[0], 40);
    VerifyReport r = f.Verify(true);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].find(".idx") != std::string::npos);
    CHECK(r.damaged_chunks.empty());
    std::string raw;
    auto repo = f.Open();
    auto fc = repo->LoadFileChunks(BackupRef{"vm1", f.id}, repo->LoadManifest({"vm1", f.id})->files[0]);
    REQUIRE(fc.ok());
    CHECK(repo->ReadChunk(fc->digests[0], &raw).ok());
  }
}

TEST_CASE("leftovers of an interrupted backup are notes, not damage", "[verify]") {
  Fixture f;
  REQUIRE(MkdirAll(f.repo_path + "/backups/vm1/.tmp-deadbeef/files").ok());
  LocalBackend backend(f.repo_path, Env::Default());
  auto w = PackWriter::Create(backend);
  REQUIRE(w->Append(Digest::Of("x"), Codec::kNone, 1, "x").ok());
  REQUIRE(w->Finish().ok());  // a finished pack no index names
  VerifyReport r = f.Verify(true);
  CHECK(r.ok());
  CHECK(r.notes.size() == 2);
  CHECK(f.Open()->ListBackupIds("vm1")->size() == 1);
}


TEST_CASE("read-data reads neighbouring records of a pack together, damage is still per record",
          "[verify]") {
  Fixture f;
  auto* counting = new test::PackReadCounter(f.repo_path, Env::Default());
  auto repo = Repository::Open(std::unique_ptr<Backend>(counting), test::DefaultRepoOptions());
  REQUIRE(repo.ok());
  int before = counting->pack_reads;
  REQUIRE(RunVerify(**repo, VerifyOptions{false}).ok());
  int structure = counting->pack_reads - before;  // the pack's footer and table
  before = counting->pack_reads;
  auto r = RunVerify(**repo, VerifyOptions{true});
  REQUIRE(r.ok());
  CHECK(r->chunks_read == 80);
  // One pack of 80 records, under 8 MiB: one read for all of them (80 one by one).
  CHECK(counting->pack_reads - before == structure + 1);

  test::FlipByte(f.OnlyPack(), 300);  // inside the first record
  VerifyReport damaged = f.Verify(true);
  CHECK(damaged.chunks_read == 80);
  CHECK(damaged.damaged_chunks.size() == 1);
}

// The backend contract (store/backend/backend.h), on the local directory backend, and the
// repository over a backend that loses power at every step of a backup.
#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "store/backend/local_backend.h"
#include "store/backup.h"
#include "store/verify.h"
#include "test/power_loss_env.h"
#include "test/test_util.h"

using namespace lm;

TEST_CASE("objects are created once, read by range, listed by prefix and deleted", "[backend]") {
  test::TempDir dir;
  LocalBackend b(dir / "repo", Env::Default());
  REQUIRE(b.PrepareNew().ok());
  REQUIRE(b.Create("packs/ab/x.pack", "0123456789").ok());
  REQUIRE(b.Create("packs/cd/y.pack", "abc").ok());
  REQUIRE(b.Create("index/1.idx", "i").ok());
  REQUIRE(b.Create("config", "{}").ok());

  Status again = b.Create("packs/ab/x.pack", "other");
  CHECK(again.code() == Code::kExists);
  CHECK(*b.ReadAll("packs/ab/x.pack") == "0123456789");  // the first one is untouched

  std::string out;
  REQUIRE(b.ReadRange("packs/ab/x.pack", 3, 4, &out).ok());
  CHECK(out == "3456");
  CHECK(b.ReadRange("packs/ab/x.pack", 8, 4, &out).code() == Code::kCorrupt);  // past the end
  CHECK(b.ReadRange("packs/none", 0, 1, &out).code() == Code::kNotFound);
  CHECK(b.ReadAll("nothing").status().code() == Code::kNotFound);
  CHECK(*b.Size("packs/cd/y.pack") == 3);

  auto packs = b.List("packs/");
  REQUIRE(packs.ok());
  REQUIRE(packs->size() == 2);
  CHECK((*packs)[0].name == "packs/ab/x.pack");
  CHECK((*packs)[0].size == 10);
  CHECK((*packs)[1].name == "packs/cd/y.pack");
  CHECK(b.List("")->size() == 4);
  CHECK(b.List("backups/")->empty());  // nothing there yet: empty, not an error

  REQUIRE(b.Delete("packs/ab/x.pack").ok());
  CHECK(b.Delete("packs/ab/x.pack").ok());  // deletes are retried after a crash
  CHECK(b.List("packs/")->size() == 1);
  CHECK(b.Size("packs/ab/x.pack").status().code() == Code::kNotFound);
}

TEST_CASE("object names outside the model are refused", "[backend]") {
  test::TempDir dir;
  LocalBackend b(dir.path(), Env::Default());
  for (const char* bad : {"", "/abs", "a//b", "../up", "a/../b", ".hidden", "a/.tmp", "a/", "x\\y"}) {
    INFO(bad);
    CHECK(b.Create(bad, "x").code() == Code::kInvalid);
    CHECK(b.ReadAll(bad).status().code() == Code::kInvalid);
  }
  CHECK(b.List("a").status().code() == Code::kInvalid);     // a prefix is a folder
  CHECK(b.List("../").status().code() == Code::kInvalid);
  CHECK(!PathExists(dir / "../up"));
}

TEST_CASE("an object is invisible until committed and gone if abandoned", "[backend]") {
  test::TempDir dir;
  LocalBackend b(dir.path(), Env::Default());
  {
    auto w = b.NewWriter("packs/aa/big.pack");
    REQUIRE(w.ok());
    REQUIRE((*w)->Append(std::string(6 << 20, 'p')).ok());  // past the write buffer
    CHECK(b.List("packs/")->empty());
    CHECK(b.ListPartial("packs/")->size() == 1);
  }
  CHECK(b.List("")->empty());
  CHECK(b.ListPartial("")->empty());
  auto w = b.NewWriter("packs/aa/big.pack");
  REQUIRE((*w)->Append("x").ok());
  REQUIRE(b.Create("packs/aa/big.pack", "first").ok());
  CHECK((*w)->Commit().code() == Code::kExists);  // a writer never replaces an object
  CHECK(*b.ReadAll("packs/aa/big.pack") == "first");
}

TEST_CASE("symlinks, FIFOs and devices planted in a repository are not objects", "[backend]") {
  test::TempDir dir;
  LocalBackend b(dir / "repo", Env::Default());
  REQUIRE(b.PrepareNew().ok());
  REQUIRE(b.Create("index/good.idx", "g").ok());
  test::WriteFile(dir / "secret", "secret");
  REQUIRE(::symlink((dir / "secret").c_str(), (dir / "repo/index/link.idx").c_str()) == 0);
  REQUIRE(::mkfifo((dir / "repo/index/fifo.idx").c_str(), 0600) == 0);
  auto listed = b.List("index/");
  REQUIRE(listed->size() == 1);
  CHECK((*listed)[0].name == "index/good.idx");
  CHECK(b.ReadAll("index/link.idx").status().code() != Code::kOk);   // never followed
  CHECK(b.ReadAll("index/fifo.idx").status().code() == Code::kCorrupt);  // and never hangs
}

TEST_CASE("maintenance cannot lock a repository while a backup holds it", "[backend]") {
  test::TempDir dir;
  LocalBackend b(dir.path(), Env::Default());
  {
    auto shared = b.Lock(LockMode::kShared);
    REQUIRE(shared.ok());
    CHECK(b.Lock(LockMode::kShared).ok());  // backups share it
    CHECK(b.Lock(LockMode::kExclusive).status().code() == Code::kBusy);
  }
  CHECK(b.Lock(LockMode::kExclusive).ok());
}

TEST_CASE("a power loss at any step of a create leaves the object whole or absent", "[backend][power]") {
  test::TempDir dir;
  test::PowerLossEnv env;
  const std::string data = test::RandomBytes(5 << 20, 7);  // spans a flush of the write buffer
  for (int step = 0;; step++) {
    LocalBackend b(dir / ("r" + std::to_string(step)), &env);
    REQUIRE(b.PrepareNew().ok());
    env.FailAfter(step);
    Status s = b.Create("packs/ab/p.pack", data);
    env.DropUnsynced();
    INFO("step " << step << ": " << s.ToString());
    auto size = b.Size("packs/ab/p.pack");
    if (size.ok()) CHECK(*b.ReadAll("packs/ab/p.pack") == data);
    if (s.ok()) {
      CHECK(size.ok());
      break;
    }
    REQUIRE(step < 100);
  }
}

TEST_CASE("a backup stopped by a power loss at any step leaves a consistent repository", "[backend][power]") {
  test::TempDir dir;
  REQUIRE(MkdirAll(dir / "vm").ok());
  test::WriteFile(dir / "vm/disk.raw", test::RandomBytes(300000, 3) + std::string(100000, '\0'));
  test::WriteFile(dir / "vm/vm.vmx", "config");
  test::PowerLossEnv env;
  for (int step = 0;; step++) {
    std::string repo_path = dir / ("repo" + std::to_string(step));
    REQUIRE(Repository::Init(repo_path, 4096, Env::Default()).ok());
    RepoOptions o;
    o.env = &env;
    auto repo = Repository::Open(repo_path, o);
    REQUIRE(repo.ok());
    BackupOptions bo{"vm1", dir / "vm"};
    bo.pack_target_bytes = 1 << 20;
    env.FailAfter(step);
    auto r = RunBackup(**repo, bo);
    env.DropUnsynced();
    INFO("step " << step << ": " << (r.ok() ? std::string("ok") : r.status().message()));

    auto reopened = Repository::Open(repo_path, test::DefaultRepoOptions());
    REQUIRE(reopened.ok());
    auto report = RunVerify(**reopened, VerifyOptions{true});
    REQUIRE(report.ok());
    for (auto& e : report->errors) FAIL_CHECK(e);
    CHECK(report->damaged_chunks.empty());
    auto ids = (*reopened)->ListBackupIds("vm1");
    size_t copies = ids.ok() ? ids->size() : 0;
    // A copy is listed once its backup.json is durable: always after success, and after a
    // failure only if the loss came after that commit (when the backup could not know).
    if (r.ok()) CHECK(copies == 1);
    else CHECK(copies <= 1);
    if (r.ok()) break;
    REQUIRE(step < 400);
  }
}

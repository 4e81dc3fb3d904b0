#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "store/backend/local_backend.h"
#include "store/backup.h"
#include "store/restore.h"
#include "store/verify.h"
#include "test/test_util.h"

using namespace lm;

namespace {

constexpr uint32_t kChunk = 4096;

// Fails every write after the first `budget` ones: a full disk or a dying device.
class FailingEnv : public Env {
 public:
  explicit FailingEnv(int budget) : budget_(budget) {}
  Status PWrite(int fd, const void* buf, size_t n, uint64_t off, const std::string& path) override {
    if (budget_.fetch_sub(1) <= 0) return Status::IoError("write " + path + ": injected failure");
    return Env::PWrite(fd, buf, n, off, path);
  }

 private:
  std::atomic<int> budget_;
};

std::unique_ptr<Repository> MakeRepo(const test::TempDir& dir, Env* env = Env::Default()) {
  if (!PathExists(dir / "repo")) REQUIRE(Repository::Init(dir / "repo", kChunk, Env::Default()).ok());
  RepoOptions o;
  o.env = env;
  auto r = Repository::Open(dir / "repo", o);
  REQUIRE(r.ok());
  return std::move(r).value();
}

void MakeVm(const std::string& vmdir) {
  REQUIRE(MkdirAll(vmdir + "/sub").ok());
  std::string disk = test::RandomBytes(300 * 1024, 1) + std::string(200 * 1024, '\0') +
                     test::TextBytes(300 * 1024 + 123);
  test::WriteFile(vmdir + "/disk-flat.vmdk", disk);
  test::WriteFile(vmdir + "/vm.vmx", "displayName = \"vm\"\n");
  test::WriteFile(vmdir + "/sub/empty.log", "");
  REQUIRE(::truncate((vmdir + "/sparse.raw").c_str(), 0) != 0);  // does not exist yet
  test::WriteFile(vmdir + "/sparse.raw", "");
  REQUIRE(::truncate((vmdir + "/sparse.raw").c_str(), 8 << 20) == 0);
  REQUIRE(::symlink("vm.vmx", (vmdir + "/link.vmx").c_str()) == 0);
  REQUIRE(::chmod((vmdir + "/vm.vmx").c_str(), 0600) == 0);
}

BackupManifest Backup(Repository& repo, const std::string& vm, const std::string& dir) {
  BackupOptions o;
  o.vm = vm;
  o.vmdir = dir;
  auto r = RunBackup(repo, o);
  REQUIRE(r.ok());
  return r->manifest;
}

}  // namespace

TEST_CASE("backup then restore is byte-identical, sparse, with metadata", "[backup]") {
  test::TempDir dir;
  MakeVm(dir / "vm");
  auto repo = MakeRepo(dir);
  BackupManifest m = Backup(*repo, "vm1", dir / "vm");
  CHECK(m.files.size() == 6);
  CHECK(m.zero_chunks >= 50 + 2048);  // the zero region and the whole sparse file
  auto ref = repo->ResolveSpec("vm1");
  REQUIRE(ref.ok());
  CHECK(ref->id == m.id);
  auto r = RunRestore(*repo, *ref, dir / "out", {});
  REQUIRE(r.ok());
  CHECK(r->files == 4);
  CHECK(r->symlinks == 1);
  for (const char* f : {"disk-flat.vmdk", "vm.vmx", "sub/empty.log", "sparse.raw"}) {
    INFO(f);
    CHECK(test::ReadAll(dir / "vm/" + f) == test::ReadAll(dir / "out/" + f));
  }
  struct stat a, b;
  REQUIRE(::stat((dir / "out/sparse.raw").c_str(), &b) == 0);
  CHECK(b.st_size == 8 << 20);
  CHECK(b.st_blocks == 0);  // holes, not written zeros
  REQUIRE(::stat((dir / "vm/vm.vmx").c_str(), &a) == 0);
  REQUIRE(::stat((dir / "out/vm.vmx").c_str(), &b) == 0);
  CHECK((b.st_mode & 07777) == 0600);
  CHECK(a.st_mtim.tv_sec == b.st_mtim.tv_sec);
  CHECK(a.st_mtim.tv_nsec == b.st_mtim.tv_nsec);
  char target[64] = {};
  REQUIRE(::readlink((dir / "out/link.vmx").c_str(), target, sizeof target) > 0);
  CHECK(std::string(target) == "vm.vmx");
}

TEST_CASE("dedup: unchanged, 1% changed, and across VMs", "[backup]") {
  test::TempDir dir;
  REQUIRE(MkdirAll(dir / "vm").ok());
  std::string disk = test::RandomBytes(8 << 20, 9);  // 2048 chunks of 4 KiB
  test::WriteFile(dir / "vm/disk.raw", disk);
  auto repo = MakeRepo(dir);
  BackupManifest first = Backup(*repo, "vm1", dir / "vm");
  CHECK(first.new_raw_bytes == disk.size());

  BackupManifest same = Backup(*repo, "vm1", dir / "vm");
  CHECK(same.new_raw_bytes == 0);
  CHECK(same.stored_bytes == 0);

  for (int i = 0; i < 20; i++) disk[(i * 101 + 7) * kChunk + 13] ^= 1;  // 20 of 2048 chunks
  test::WriteFile(dir / "vm/disk.raw", disk);
  BackupManifest changed = Backup(*repo, "vm1", dir / "vm");
  CHECK(changed.new_chunks == 20);
  CHECK(changed.new_raw_bytes == 20 * kChunk);

  BackupManifest other = Backup(*repo, "vm2", dir / "vm");
  CHECK(other.new_raw_bytes == 0);
  CHECK(repo->ListBackupIds("vm1")->size() == 3);

  auto r = RunRestore(*repo, *repo->ResolveSpec("vm1@" + first.id), dir / "first", {});
  REQUIRE(r.ok());
  std::string orig = test::RandomBytes(8 << 20, 9);
  CHECK(test::ReadAll(dir / "first/disk.raw") == orig);
}

TEST_CASE("a backup that fails part way leaves no backup copy and a clean repository",
          "[backup]") {
  test::TempDir dir;
  MakeVm(dir / "vm");
  for (int budget : {0, 1, 2, 5}) {
    DYNAMIC_SECTION("writes allowed: " << budget) {
      FailingEnv env(budget);
      auto repo = MakeRepo(dir, &env);
      BackupOptions o;
      o.vm = "vm1";
      o.vmdir = dir / "vm";
      o.pack_target_bytes = 1 << 20;
      auto r = RunBackup(*repo, o);
      CHECK_FALSE(r.ok());
      CHECK(r.status().message().find("injected failure") != std::string::npos);
      auto clean = MakeRepo(dir);
      auto ids = clean->ListBackupIds("vm1");
      CHECK((!ids.ok() || ids->empty()));
      auto v = RunVerify(*clean, VerifyOptions{true});
      REQUIRE(v.ok());
      CHECK(v->ok());
      // The next backup succeeds and restores.
      BackupManifest m = Backup(*clean, "vm1", dir / "vm");
      auto res = RunRestore(*clean, BackupRef{"vm1", m.id}, dir / "out", {});
      REQUIRE(res.ok());
      CHECK(test::ReadAll(dir / "out/disk-flat.vmdk") == test::ReadAll(dir / "vm/disk-flat.vmdk"));
    }
  }
}

// Makes creating a pack slow (the folder's fsync on a busy disk), so that backup workers
// that fill packs at the same time race to open the next one.
class SlowPackCreateEnv : public Env {
 public:
  Result<UniqueFd> Open(const std::string& path, int flags, mode_t mode) override {
    if ((flags & O_CREAT) && path.find("/packs/") != std::string::npos) {
      creates++;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Env::Open(path, flags, mode);
  }
  std::atomic<int> creates{0};
};

TEST_CASE("workers racing to open a pack leave no temporary pack behind", "[backup]") {
  test::TempDir dir;
  REQUIRE(MkdirAll(dir / "vm").ok());
  test::WriteFile(dir / "vm/disk.raw", test::RandomBytes(24 << 20, 5));
  SlowPackCreateEnv env;
  auto repo = MakeRepo(dir, &env);
  BackupOptions o{"vm1", dir / "vm"};
  o.pack_target_bytes = 1 << 20;
  o.threads = 8;
  auto r = RunBackup(*repo, o);
  REQUIRE(r.ok());
  auto packs = repo->backend().List("packs/");
  REQUIRE(packs.ok());
  // More packs were opened than the backup filled: the losers of the race were spares,
  // and the last spare was never committed.
  CHECK(env.creates > static_cast<int>(packs->size()));
  CHECK(repo->backend().ListPartial("")->empty());
  auto fresh = MakeRepo(dir);
  auto v = RunVerify(*fresh, VerifyOptions{true});
  REQUIRE(v.ok());
  CHECK(v->ok());
  auto res = RunRestore(*fresh, BackupRef{"vm1", r->manifest.id}, dir / "out", {});
  REQUIRE(res.ok());
  CHECK(test::ReadAll(dir / "out/disk.raw") == test::ReadAll(dir / "vm/disk.raw"));
}

TEST_CASE("two backups into one repository at once both succeed", "[backup]") {
  test::TempDir dir;
  MakeVm(dir / "vm");
  REQUIRE(MkdirAll(dir / "vm2").ok());
  test::WriteFile(dir / "vm2/disk.raw", test::RandomBytes(2 << 20, 3));
  auto repo_a = MakeRepo(dir);
  auto repo_b = MakeRepo(dir);
  Result<BackupSummary> ra = Status::Invalid("not run"), rb = Status::Invalid("not run");
  std::thread ta([&] { ra = RunBackup(*repo_a, BackupOptions{"vm1", dir / "vm"}); });
  std::thread tb([&] { rb = RunBackup(*repo_b, BackupOptions{"vm2", dir / "vm2"}); });
  ta.join();
  tb.join();
  REQUIRE(ra.ok());
  REQUIRE(rb.ok());
  auto fresh = MakeRepo(dir);
  auto v = RunVerify(*fresh, VerifyOptions{true});
  REQUIRE(v.ok());
  CHECK(v->ok());
  CHECK(v->backups == 2);
}

TEST_CASE("restore of a damaged chunk fails loudly and leaves no partial file", "[restore]") {
  test::TempDir dir;
  REQUIRE(MkdirAll(dir / "vm").ok());
  test::WriteFile(dir / "vm/disk.raw", test::RandomBytes(1 << 20, 5));
  auto repo = MakeRepo(dir);
  Backup(*repo, "vm1", dir / "vm");
  auto packs = repo->ListPacks();
  REQUIRE(packs->size() == 1);
  test::FlipByte(dir / ("repo/" + PackRelPath((*packs)[0])), 5000);
  auto fresh = MakeRepo(dir);
  auto r = RunRestore(*fresh, *fresh->ResolveSpec("vm1"), dir / "out", {});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kCorrupt);
  CHECK(r.status().message().find("disk.raw") != std::string::npos);
  CHECK_FALSE(PathExists(dir / "out/disk.raw"));
}


TEST_CASE("restore reads neighbouring chunks of a pack with one request", "[restore]") {
  test::TempDir dir;
  REQUIRE(MkdirAll(dir / "vm").ok());
  test::WriteFile(dir / "vm/disk.raw", test::RandomBytes(1 << 20, 9));  // 256 chunks of 4 KiB
  auto repo = MakeRepo(dir);
  Backup(*repo, "vm1", dir / "vm");
  auto* counting = new test::PackReadCounter(dir / "repo", Env::Default());
  RepoOptions o;
  o.env = Env::Default();
  auto fresh = Repository::Open(std::unique_ptr<Backend>(counting), o);
  REQUIRE(fresh.ok());
  int before = counting->pack_reads;  // opening may read pack tables
  auto r = RunRestore(**fresh, *(*fresh)->ResolveSpec("vm1"), dir / "out", {});
  REQUIRE(r.ok());
  CHECK(test::ReadAll(dir / "out/disk.raw") == test::ReadAll(dir / "vm/disk.raw"));
  // 256 chunks in batches of 32, each batch one run of one pack: 8 reads, not 256.
  CHECK(counting->pack_reads - before <= 8);
}

TEST_CASE("backup refuses bad arguments", "[backup]") {
  test::TempDir dir;
  auto repo = MakeRepo(dir);
  CHECK(RunBackup(*repo, BackupOptions{"vm1", dir / "missing"}).status().code() == Code::kNotFound);
  CHECK(RunBackup(*repo, BackupOptions{"bad/name", dir.path()}).status().code() == Code::kInvalid);
  BackupOptions o{"vm1", dir.path()};
  o.profile_path = dir / "no-profile.json";
  CHECK_FALSE(RunBackup(*repo, o).ok());
}

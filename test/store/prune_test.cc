// forget and prune (store/forget.h, store/prune.h): space comes back, what stays reads the
// same bytes, a reader during prune never fails, prune waits for no backup and no backup
// for it, a power loss at any step of prune leaves a repository that verifies and that
// the next prune finishes, and a copy a media agent holds is not forgotten.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>
#include <set>
#include <thread>

#include "store/backend/local_backend.h"
#include "store/backup.h"
#include "store/forget.h"
#include "store/leases.h"
#include "store/prune.h"
#include "store/repo_stats.h"
#include "store/verify.h"
#include "test/power_loss_env.h"
#include "test/test_util.h"

using namespace lm;

namespace {

constexpr uint32_t kChunk = 4096;

struct Fixture {
  test::TempDir dir;
  std::string repo_path = dir / "repo";
  std::vector<std::string> ids;       // oldest first
  std::vector<std::string> contents;  // disk.raw of each copy
  bool encrypted = false;
  explicit Fixture(int copies = 3, size_t quarter = 100 * 1024, bool encrypt = false) : encrypted(encrypt) {
    InitOptions io{kChunk, encrypted, Password(), ScryptParams{1024, 8, 1}};
    REQUIRE(Repository::Init(repo_path, io, Env::Default()).ok());
    REQUIRE(MkdirAll(dir / "vm").ok());
    std::string disk = test::RandomBytes(4 * quarter, 1);
    auto repo = Open();
    for (int i = 0; i < copies; i++) {
      // Each copy rewrites a quarter of the disk: old chunks become garbage once forgotten.
      std::string fresh = test::RandomBytes(quarter, 100 + i);
      disk.replace((i % 4) * quarter, fresh.size(), fresh);
      test::WriteFile(dir / "vm/disk.raw", disk);
      BackupOptions o{"vm1", dir / "vm"};
      o.pack_target_bytes = 1 << 20;
      auto r = RunBackup(*repo, o);
      REQUIRE(r.ok());
      ids.push_back(r->manifest.id);
      contents.push_back(disk);
    }
  }
  static PasswordSource Password() {
    return []() -> Result<std::string> { return std::string("pw"); };
  }
  std::unique_ptr<Repository> Open(Env* env = Env::Default()) {
    RepoOptions o;
    o.env = env;
    o.password = Password();
    auto r = Repository::Open(repo_path, o);
    REQUIRE(r.ok());
    return std::move(r).value();
  }
  // Every byte of disk.raw of copy i, read chunk by chunk through the repository.
  std::string Read(Repository& repo, size_t i) {
    BackupRef b{"vm1", ids[i]};
    auto m = repo.LoadManifest(b);
    REQUIRE(m.ok());
    auto fc = repo.LoadFileChunks(b, m->files[0]);
    REQUIRE(fc.ok());
    std::string out, raw;
    for (const Digest& d : fc->digests) {
      if (d.IsZero()) {
        out += std::string(kChunk, '\0');
        continue;
      }
      Status s = repo.ReadChunk(d, &raw);
      REQUIRE(s.ok());
      out += raw;
    }
    out.resize(fc->file_size);
    return out;
  }
  VerifyReport Verify() {
    auto repo = Open();
    auto r = RunVerify(*repo, VerifyOptions{true});
    REQUIRE(r.ok());
    for (auto& e : r->errors) FAIL_CHECK(e);
    CHECK(r->damaged_chunks.empty());
    return *r;
  }
};

PruneOptions RepackAll() {
  PruneOptions o;
  o.max_unused = 0;
  return o;
}

}  // namespace

TEST_CASE("forget then prune returns the space of forgotten copies, what stays is intact", "[prune]") {
  Fixture f(4);
  auto repo = f.Open();
  uint64_t before = 0;
  for (auto& o : *repo->backend().List("packs/")) before += o.size;
  ForgetOptions fo;
  fo.policy.last = 1;
  auto forgot = RunForget(*repo, fo);
  REQUIRE(forgot.ok());
  CHECK(forgot->removed == 3);
  CHECK(*repo->ListBackupIds("vm1") == std::vector<std::string>{f.ids[3]});
  VerifyReport v = f.Verify();
  CHECK(v.unreferenced_chunks > 0);  // not damage: what prune reclaims
  CHECK(v.ok());

  auto r = RunPrune(*repo, RepackAll());
  REQUIRE(r.ok());
  CHECK(r->reclaimed() > 0);
  CHECK(r->chunks_unused > 0);
  uint64_t after = 0;
  for (auto& o : *repo->backend().List("packs/")) after += o.size;
  CHECK(after < before);
  CHECK(after <= 400 * 1024 + 64 * 1024);  // about one disk's worth left
  CHECK(f.Read(*repo, 3) == f.contents[3]);
  CHECK(f.Read(*f.Open(), 3) == f.contents[3]);
  v = f.Verify();
  CHECK(v.unreferenced_chunks == 0);
  // A second prune finds nothing to do.
  auto again = RunPrune(*repo, RepackAll());
  REQUIRE(again.ok());
  CHECK(again->packs_deleted == 0);
  CHECK(again->packs_repacked == 0);
}

TEST_CASE("prune on an encrypted repository copies sealed records unchanged, and no changed one", "[prune][crypto]") {
  Fixture f(4, 100 * 1024, true);
  auto repo = f.Open();
  REQUIRE(repo->encrypted());
  ForgetOptions fo;
  fo.policy.last = 2;
  REQUIRE(RunForget(*repo, fo).ok());
  // A flipped byte in a record that prune would copy: prune refuses and deletes nothing.
  auto table = repo->index().AllEntries();
  std::set<Digest> used;
  auto kept = repo->ListBackupIds("vm1");  // what prune keeps is what forget left
  REQUIRE(kept.ok());
  REQUIRE(kept->size() == 2);
  for (const std::string& id : *kept) {
    BackupRef b{"vm1", id};
    auto m = repo->LoadManifest(b);
    REQUIRE(m.ok());
    for (const Digest& d : repo->LoadFileChunks(b, m->files[0])->digests) used.insert(d);
  }
  // A used record in a pack that also holds unused ones: the pack prune rewrites.
  std::set<PackId> mixed;
  for (auto& pe : table)
    if (!used.count(pe.second.digest)) mixed.insert(pe.first);
  // Every such record is damaged, so whichever prune copies first, it finds the damage
  // (which records share a pack depends on the random keys).
  std::vector<std::pair<std::string, uint64_t>> flips;
  for (auto& pe : table) {
    if (!used.count(pe.second.digest) || !mixed.count(pe.first)) continue;
    std::string pack_file = f.repo_path + "/" + PackRelPath(pe.first);
    ::chmod(pack_file.c_str(), 0600);
    flips.push_back({pack_file, pe.second.offset + kRecordHeaderSize + pe.second.stored_len / 2});
  }
  REQUIRE(!flips.empty());
  for (auto& [file, at] : flips) test::FlipByte(file, at);
  uint64_t packs_before = repo->backend().List("packs/")->size();
  auto refused = RunPrune(*repo, RepackAll());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("authentication failed") != std::string::npos);
  CHECK(repo->backend().List("packs/")->size() == packs_before);
  for (auto& [file, at] : flips) test::FlipByte(file, at);  // repaired
  auto r = RunPrune(*repo, RepackAll());
  REQUIRE(r.ok());
  CHECK(r->reclaimed() > 0);
  CHECK(f.Read(*f.Open(), 2) == f.contents[2]);
  CHECK(f.Read(*f.Open(), 3) == f.contents[3]);
  VerifyReport v = f.Verify();
  CHECK(v.unreferenced_chunks == 0);
}

TEST_CASE("a reader keeps reading every chunk while prune repacks under it", "[prune]") {
  Fixture f(3);
  auto reader = f.Open();  // a live mount's repository: its index still names the old packs
  auto pruner = f.Open();
  ForgetOptions fo;
  fo.copies = {"vm1@" + f.ids[0]};
  REQUIRE(RunForget(*pruner, fo).ok());
  std::atomic<bool> done{false};
  std::atomic<int> errors{0}, rounds{0};
  std::thread t([&] {
    while (!done) {
      for (size_t i = 1; i < 3; i++) {
        BackupRef b{"vm1", f.ids[i]};
        auto m = reader->LoadManifest(b);
        auto fc = reader->LoadFileChunks(b, m->files[0]);
        std::string raw, out;
        for (const Digest& d : fc->digests) {
          if (d.IsZero()) continue;
          if (!reader->ReadChunk(d, &raw).ok()) errors++;
        }
      }
      rounds++;
    }
  });
  while (rounds == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto r = RunPrune(*pruner, RepackAll());
  REQUIRE(r.ok());
  CHECK(r->packs_repacked + r->packs_deleted > 0);
  int at = rounds;
  while (rounds < at + 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  done = true;
  t.join();
  CHECK(errors == 0);
  CHECK(f.Read(*reader, 1) == f.contents[1]);
  CHECK(f.Read(*reader, 2) == f.contents[2]);
}

TEST_CASE("prune and backups exclude each other", "[prune]") {
  Fixture f(1);
  auto repo = f.Open();
  {
    auto backup_lock = repo->backend().Lock(LockMode::kShared);  // a backup is running
    REQUIRE(backup_lock.ok());
    CHECK(RunPrune(*repo, PruneOptions{}).status().code() == Code::kBusy);
  }
  CHECK(RunPrune(*repo, PruneOptions{}).ok());
}

TEST_CASE("a power loss at any step of prune leaves a repository that verifies and the next prune finishes",
          "[prune][powerloss]") {
  int steps = 0;
  for (int step = 0;; step++) {
    Fixture f(4, 600 * 1024);  // packs of 1 MiB: several to delete, repack and write
    {
      auto repo = f.Open();
      ForgetOptions fo;
      fo.copies = {"vm1@" + f.ids[0], "vm1@" + f.ids[1], "vm1@" + f.ids[2]};
      REQUIRE(RunForget(*repo, fo).ok());
    }
    test::PowerLossEnv env;
    Status s;
    {
      auto repo = f.Open(&env);
      env.FailAfter(step);
      auto r = RunPrune(*repo, RepackAll());
      s = r.status();
      env.DropUnsynced();
    }
    INFO("step " << step << ": " << s.ToString());
    f.Verify();
    auto repo = f.Open();
    CHECK(f.Read(*repo, 3) == f.contents[3]);
    auto next = RunPrune(*repo, RepackAll());  // finishes what the lost one started
    REQUIRE(next.ok());
    VerifyReport v = f.Verify();
    CHECK(v.unreferenced_chunks == 0);
    CHECK(v.notes.empty());
    CHECK(f.Read(*f.Open(), 3) == f.contents[3]);
    if (s.ok()) break;
    steps++;
    REQUIRE(step < 300);
  }
  CHECK(steps >= 20);  // prune was stopped at this many distinct moments
}

TEST_CASE("a copy a live media agent holds is not forgotten until it is released", "[prune][lease]") {
  Fixture f(2);
  auto repo = f.Open();
  LeaseWriter lease(repo->backend(), Env::Default());
  REQUIRE(lease.Add("vm1@" + f.ids[0], "open files").ok());
  ForgetOptions fo;
  fo.policy.last = 1;
  auto r = RunForget(*repo, fo);
  REQUIRE(r.ok());
  CHECK(r->removed == 0);
  CHECK(r->held == 1);
  REQUIRE(r->copies.size() == 2);
  CHECK(r->copies[1].held_by.find("open files") != std::string::npos);
  CHECK(repo->ListBackupIds("vm1")->size() == 2);
  lease.Release();
  r = RunForget(*repo, fo);
  REQUIRE(r.ok());
  CHECK(r->removed == 1);
  CHECK(repo->ListBackupIds("vm1")->size() == 1);
}

TEST_CASE("a forget stopped after its first step leaves the copy gone and prune cleans up", "[prune]") {
  Fixture f(2);
  test::PowerLossEnv env;
  {
    auto repo = f.Open(&env);
    env.FailAfter(2);  // delete backup.json (unlink, fsync dir), then nothing more
    Status s = ForgetCopy(*repo, BackupRef{"vm1", f.ids[0]});
    CHECK(!s.ok());
    env.DropUnsynced();
  }
  auto repo = f.Open();
  CHECK(*repo->ListBackupIds("vm1") == std::vector<std::string>{f.ids[1]});
  VerifyReport v = f.Verify();
  CHECK(!v.notes.empty());  // the rest of the copy, invisible
  REQUIRE(RunPrune(*repo, PruneOptions{}).ok());
  v = f.Verify();
  CHECK(v.notes.empty());
  CHECK(f.Read(*repo, 1) == f.contents[1]);
}

TEST_CASE("repository statistics tell unique from shared and what prune would reclaim", "[prune][stats]") {
  Fixture f(2);
  auto repo = f.Open();
  auto s = CollectRepoStats(*repo);
  REQUIRE(s.ok());
  REQUIRE(s->copies.size() == 2);
  // The second copy rewrote a quarter: the first holds that quarter alone, the rest is shared.
  CHECK(s->copies[0].unique_stored > 90 * 1024);
  CHECK(s->copies[0].unique_stored < 120 * 1024);
  CHECK(s->copies[0].shared_stored > 250 * 1024);
  CHECK(s->copies[0].logical_bytes == 400 * 1024);
  CHECK(s->dedup_ratio() > 1.5);
  CHECK(s->reclaimable() == 0);
  CHECK(s->mean_pack_fill > 0.95);
  ForgetOptions fo;
  fo.copies = {"vm1@" + f.ids[0]};
  REQUIRE(RunForget(*repo, fo).ok());
  s = CollectRepoStats(*repo);
  REQUIRE(s.ok());
  CHECK(s->reclaimable() > 90 * 1024);
  CHECK(s->unreferenced_chunks > 0);
  REQUIRE(RunPrune(*repo, RepackAll()).ok());
  s = CollectRepoStats(*repo);
  REQUIRE(s.ok());
  CHECK(s->reclaimable() == 0);
  CHECK(s->unreferenced_chunks == 0);
  CHECK(CollectRepoStats(*repo, "nope").status().code() == Code::kNotFound);
}

TEST_CASE("a lease keeps holds added while a refresh was computed, and knows its process", "[lease]") {
  test::TempDir dir;
  LocalBackend backend(dir.path(), Env::Default());
  REQUIRE(backend.PrepareNew().ok());
  LeaseWriter w(backend, Env::Default());
  REQUIRE(w.Add("vm1@a", "open files").ok());
  REQUIRE(w.Set({{"vm1@b", {"overlay"}}}).ok());  // computed before the Add: keeps vm1@a
  auto held = HeldCopies(backend, Env::Default());
  REQUIRE(held.ok());
  CHECK(held->count("vm1@a") == 1);
  CHECK(held->count("vm1@b") == 1);
  REQUIRE(w.Set({{"vm1@b", {"overlay"}}}).ok());  // the next refresh may drop it
  held = HeldCopies(backend, Env::Default());
  CHECK(held->count("vm1@a") == 0);
  auto leases = ReadLeases(backend);
  REQUIRE(leases.ok());
  REQUIRE(leases->size() == 1);
  CHECK(backend.List("leases/")->size() == 1);  // the previous state was deleted
  Lease l = leases->front();
  CHECK(LeaseLive(l, Env::Default()));
  l.pid_start += 1;  // another process that got the same pid
  CHECK_FALSE(LeaseLive(l, Env::Default()));
  w.Release();
  CHECK(HeldCopies(backend, Env::Default())->empty());
}

TEST_CASE("a second reason to hold a copy already held costs no request until the next refresh", "[lease]") {
  test::TempDir dir;
  LocalBackend backend(dir.path(), Env::Default());
  REQUIRE(backend.PrepareNew().ok());
  LeaseWriter w(backend, Env::Default());
  REQUIRE(w.Add("vm1@a", "pinned").ok());
  auto before = backend.List("leases/");
  REQUIRE(before->size() == 1);
  REQUIRE(w.Add("vm1@a", "open files").ok());  // the hypervisor opens a pre-staged copy
  auto after = backend.List("leases/");
  REQUIRE(after->size() == 1);
  CHECK(after->front().name == before->front().name);  // nothing written
  REQUIRE(w.Set({{"vm1@a", {"pinned"}}}).ok());        // the keeper's next refresh
  auto leases = ReadLeases(backend);
  REQUIRE(leases->size() == 1);
  auto why = leases->front().holds["vm1@a"];
  CHECK(std::find(why.begin(), why.end(), "open files") != why.end());
}

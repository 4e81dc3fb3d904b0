// The namespace across restarts of the daemon: with the inode index, a node number handed
// out by one daemon resolves in the next (as NFS file handles need), renames keep numbers,
// and a new file on a number used before gets a new generation.
#include <catch2/catch.hpp>

#include "fs/inode_index.h"
#include "fs/namespace.h"
#include "fs/overlay_store.h"
#include "store/backup.h"
#include "test/test_util.h"

using namespace lm;

namespace {

struct Daemon {  // one life of the media agent: repository, overlays, inode index, namespace
  std::unique_ptr<Repository> repo;
  std::unique_ptr<OverlayStore> overlays;
  std::unique_ptr<InodeIndex> inodes;
  std::unique_ptr<Namespace> ns;
  Daemon(const test::TempDir& dir, bool with_index) {
    repo = std::move(Repository::Open(dir / "repo", test::DefaultRepoOptions())).value();
    overlays = std::move(OverlayStore::Open(dir / "state")).value();
    if (with_index) inodes = std::move(InodeIndex::Open(dir / "state")).value();
    ns = std::make_unique<Namespace>(*repo, overlays.get(), inodes.get());
  }
  std::shared_ptr<Node> Walk(const std::vector<std::string>& path) {
    Ino at = kRootIno;
    std::shared_ptr<Node> n;
    for (auto& name : path) {
      auto r = ns->Lookup(at, name);
      REQUIRE(r.ok());
      n = *r;
      at = n->ino;
    }
    return n;
  }
};

std::string MakeRepo(const test::TempDir& dir) {
  REQUIRE(Repository::Init(dir / "repo", 4096, Env::Default()).ok());
  REQUIRE(MkdirAll(dir / "vm/sub/deeper").ok());
  test::WriteFile(dir / "vm/disk.img", test::RandomBytes(20000, 3));
  test::WriteFile(dir / "vm/sub/deeper/notes.txt", "hello");
  auto repo = std::move(Repository::Open(dir / "repo", test::DefaultRepoOptions())).value();
  BackupOptions o;
  o.vm = "vm1";
  o.vmdir = dir / "vm";
  auto r = RunBackup(*repo, o);
  REQUIRE(r.ok());
  return std::move(repo->ListBackupIds("vm1")).value().at(0);
}

}  // namespace

TEST_CASE("inode numbers resolve after a restart through the inode index") {
  test::TempDir dir;
  std::string id = MakeRepo(dir);
  Ino deep, disk;
  uint32_t gen;
  {
    Daemon d(dir, true);
    deep = d.Walk({"vm1", id, "sub", "deeper", "notes.txt"})->ino;
    auto n = d.Walk({"vm1", id, "disk.img"});
    disk = n->ino;
    gen = n->generation;
  }
  Daemon d(dir, true);
  // Nothing was looked up in this life: the number alone leads back to the file.
  REQUIRE_FALSE(d.ns->Get(deep).ok());
  auto n = d.ns->Resolve(deep);
  REQUIRE(n.ok());
  CHECK((*n)->name == "notes.txt");
  CHECK((*n)->rel == "sub/deeper/notes.txt");
  auto again = d.ns->Resolve(disk);
  REQUIRE(again.ok());
  CHECK((*again)->generation == gen);
  CHECK_FALSE(d.ns->Resolve(0x1234567).ok());  // never handed out: stale
}

TEST_CASE("without the inode index an unseen number does not resolve") {
  test::TempDir dir;
  std::string id = MakeRepo(dir);
  Ino deep;
  {
    Daemon d(dir, false);
    deep = d.Walk({"vm1", id, "sub", "deeper", "notes.txt"})->ino;
  }
  Daemon d(dir, false);
  CHECK_FALSE(d.ns->Resolve(deep).ok());
}

TEST_CASE("renames keep numbers across restarts, a re-created file gets a new generation") {
  test::TempDir dir;
  std::string id = MakeRepo(dir);
  Ino moved, created;
  uint32_t created_gen;
  {
    Daemon d(dir, true);
    auto backup = d.Walk({"vm1", id});
    auto sub = d.Walk({"vm1", id, "sub"});
    moved = sub->ino;
    REQUIRE(d.ns->Rename(backup->ino, "sub", backup->ino, "renamed", 0).ok());
    auto f = d.ns->Create(backup->ino, "new.txt", NodeKind::kFile, 0644, 0, 0);
    REQUIRE(f.ok());
    created = (*f)->ino;
    created_gen = (*f)->generation;
  }
  {
    Daemon d(dir, true);
    auto n = d.ns->Resolve(moved);
    REQUIRE(n.ok());
    CHECK((*n)->name == "renamed");
    auto deeper = d.ns->Lookup(moved, "deeper");
    REQUIRE(deeper.ok());
    // Delete and create the same path: after a restart it lands on the same number.
    auto backup = d.Walk({"vm1", id});
    REQUIRE(d.ns->Remove(backup->ino, "new.txt", false).ok());
  }
  Daemon d(dir, true);
  CHECK_FALSE(d.ns->Resolve(created).ok());  // removed: its handle is stale
  auto backup = d.Walk({"vm1", id});
  auto f = d.ns->Create(backup->ino, "new.txt", NodeKind::kFile, 0644, 0, 0);
  REQUIRE(f.ok());
  CHECK((*f)->ino == created);
  CHECK((*f)->generation == created_gen + 1);  // the old handle cannot reach the new file
}

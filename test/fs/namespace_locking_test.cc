// The namespace's lock is never held across a synced write: while one backup copy's create
// waits for its fsync (held at a gate in a test RocksDB filesystem), lookups and listings
// of every copy, the same one included, go on; the new name appears only once durable.
#include <catch2/catch.hpp>

#include <future>
#include <thread>

#include "fs/inode_index.h"
#include "fs/namespace.h"
#include "fs/overlay_store.h"
#include "store/backup.h"
#include "test/rocks_fault_fs.h"
#include "test/test_util.h"

using namespace lm;

namespace {

void BackUp(Repository& repo, const test::TempDir& dir, const std::string& vm) {
  REQUIRE(MkdirAll(dir / (vm + "/sub")).ok());
  test::WriteFile(dir / (vm + "/disk.img"), test::RandomBytes(20000, 5));
  test::WriteFile(dir / (vm + "/sub/notes.txt"), "hello");
  BackupOptions o;
  o.vm = vm;
  o.vmdir = dir / vm;
  REQUIRE(RunBackup(repo, o).ok());
}

// Runs f on another thread; true if it finished within the (generous) deadline. A lookup
// that waited for the held sync would never finish while the gate is closed.
template <typename F>
bool FinishesWhileSyncHeld(F f) {
  auto done = std::async(std::launch::async, f);
  return done.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
}

}  // namespace

TEST_CASE("lookups never wait for another change's fsync", "[namespace][locking]") {
  test::TempDir dir;
  REQUIRE(Repository::Init(dir / "repo", 4096, Env::Default()).ok());
  auto repo = std::move(Repository::Open(dir / "repo", test::DefaultRepoOptions())).value();
  BackUp(*repo, dir, "vm1");
  BackUp(*repo, dir, "vm2");
  test::RocksFaultFs fs;
  auto overlays = std::move(OverlayStore::Open(dir / "state", fs.env())).value();
  auto inodes = std::move(InodeIndex::Open(dir / "state")).value();
  Namespace ns(*repo, overlays.get(), inodes.get());

  auto walk = [&](const std::string& vm, const std::string& name) -> Result<std::shared_ptr<Node>> {
    LM_ASSIGN_OR_RETURN(auto v, ns.Lookup(kRootIno, vm));
    LM_ASSIGN_OR_RETURN(auto b, ns.Lookup(v->ino, "latest"));
    LM_ASSIGN_OR_RETURN(auto copy, ns.Lookup(v->ino, b->link_target));
    if (name.empty()) return copy;
    return ns.Lookup(copy->ino, name);
  };
  auto copy1 = walk("vm1", "");
  auto copy2 = walk("vm2", "");
  REQUIRE(copy1.ok());
  REQUIRE(copy2.ok());

  for (const char* op : {"create", "rename", "remove"}) {
    DYNAMIC_SECTION(op) {
      if (std::string(op) != "create") {
        REQUIRE(ns.Create((*copy1)->ino, "new.log", NodeKind::kFile, 0644, 0, 0).ok());
      }
      fs.CloseGate();
      auto change = std::async(std::launch::async, [&] {
        if (std::string(op) == "create") return ns.Create((*copy1)->ino, "new.log", NodeKind::kFile, 0644, 0, 0).status();
        if (std::string(op) == "rename") return ns.Rename((*copy1)->ino, "new.log", (*copy1)->ino, "moved.log", 0);
        return ns.Remove((*copy1)->ino, "new.log", false);
      });
      while (fs.syncs_waiting() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));

      bool ok = FinishesWhileSyncHeld([&] {
        CHECK(walk("vm2", "disk.img").ok());                       // another copy
        CHECK(walk("vm1", "disk.img").ok());                       // the same copy
        CHECK(ns.List((*copy1)->ino).ok());
        CHECK(ns.Stat(**copy1).st_nlink >= 2);
        if (std::string(op) == "create") CHECK(!walk("vm1", "new.log").ok());  // not durable yet
        if (std::string(op) != "create") CHECK(walk("vm1", "new.log").ok());   // still there
      });
      CHECK(ok);
      CHECK(change.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready);  // still held
      fs.OpenGate();
      REQUIRE(change.get().ok());
      if (std::string(op) == "remove") CHECK(!walk("vm1", "new.log").ok());
      if (std::string(op) == "rename") CHECK(walk("vm1", "moved.log").ok());
      if (std::string(op) == "create") CHECK(walk("vm1", "new.log").ok());
    }
  }
}

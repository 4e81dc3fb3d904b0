// base/state_layout.h: every path under STATE/ comes from one place, names from users and
// backups never escape it or reach the product's own files, and an old layout migrates.
#include <catch2/catch.hpp>

#include "base/env.h"
#include "base/state_layout.h"
#include "test/test_util.h"

using namespace lm;

TEST_CASE("the state layout names every path under the root", "[state]") {
  StateLayout l("/var/lib/livemount");
  CHECK(l.LogFile() == "/var/lib/livemount/livemount.log");
  CHECK(*l.ProfileFile("web01") == "/var/lib/livemount/profiles/web01.json");
  CHECK(*l.TraceDir("web01") == "/var/lib/livemount/traces/web01");
  CHECK(*l.OverlayDir("web01", "20261126T000000Z") == "/var/lib/livemount/overlays/web01/20261126T000000Z");
  CHECK(*l.OverlayDir("web01", "20261126T000000Z-2") == "/var/lib/livemount/overlays/web01/20261126T000000Z-2");
  CHECK(l.OverlayMetaDir() == "/var/lib/livemount/overlay-meta");
  CHECK(l.InodesDir() == "/var/lib/livemount/inodes");
  CHECK(l.ExportDir() == "/var/lib/livemount/export");
}

TEST_CASE("names from users and backups never leave their folder", "[state]") {
  StateLayout l("/s");
  for (const char* bad : {"", "..", ".", "../etc", "a/b", ".hidden", "a\nb", "x y"}) {
    INFO(bad);
    CHECK(l.ProfileFile(bad).status().code() == Code::kInvalid);
    CHECK(l.TraceDir(bad).status().code() == Code::kInvalid);
    CHECK(l.OverlayDir(bad, "20261126T000000Z").status().code() == Code::kInvalid);
  }
  CHECK(l.OverlayDir("vm", "../../etc").status().code() == Code::kInvalid);
  CHECK(l.OverlayDir("vm", "latest").status().code() == Code::kInvalid);
  CHECK(CheckVmName(std::string(201, 'a')).code() == Code::kInvalid);
  // A VM called like a product folder stays inside the per-VM folders.
  for (const char* vm : {"meta", "overlay-meta", "inodes", "export"}) {
    auto dir = l.OverlayDir(vm, "20261126T000000Z");
    REQUIRE(dir.ok());
    CHECK(dir->rfind("/s/overlays/", 0) == 0);
    CHECK(*dir != l.OverlayMetaDir());
  }
}

TEST_CASE("an old state directory migrates its overlay metadata, once", "[state]") {
  test::TempDir dir;
  StateLayout l(dir.path());
  REQUIRE(MkdirAll(dir / "overlays/meta").ok());
  test::WriteFile(dir / "overlays/meta/CURRENT", "MANIFEST-000001\n");
  REQUIRE(l.Migrate().ok());
  CHECK(PathExists(dir / "overlay-meta/CURRENT"));
  CHECK(!PathExists(dir / "overlays/meta"));
  REQUIRE(l.Migrate().ok());  // idempotent
  CHECK(PathExists(dir / "overlay-meta/CURRENT"));
  // A VM named "meta" (a folder of backup ids, no CURRENT) is left where it is.
  REQUIRE(MkdirAll(dir / "overlays/meta/20261126T000000Z").ok());
  REQUIRE(l.Migrate().ok());
  CHECK(PathExists(dir / "overlays/meta/20261126T000000Z"));
}

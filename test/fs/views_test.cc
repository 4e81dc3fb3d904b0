// Views in the namespace and their reader (fs/view_reader.h): a view reads as the image it
// shows (a qcow2 decoded as qemu-img decodes it, flat extents and zeros in order), and a
// write through a view is kept in an overlay entry that names the view, so a restart finds
// the view's bytes under it again; an entry naming a view the copy does not have is refused.
#include <catch2/catch.hpp>

#include "base/env.h"
#include "base/subprocess.h"
#include "fs/namespace.h"
#include "fs/overlay_store.h"
#include "fs/view_reader.h"
#include "store/backup.h"
#include "test/test_util.h"

using namespace lm;

namespace {

CopyFileOpener LocalFiles(const std::string& dir) {
  return [dir](const std::string& path) -> Result<CopyFile> {
    std::string full = JoinPath(dir, path);
    std::string bytes = test::ReadAll(full);
    auto shared = std::make_shared<std::string>(std::move(bytes));
    RangeReader r = [shared](uint64_t off, size_t len, char* out) -> Status {
      if (off + len > shared->size()) return Status::Corrupt("short");
      std::memcpy(out, shared->data() + off, len);
      return Status::Ok();
    };
    return CopyFile{r, shared->size()};
  };
}

}  // namespace

TEST_CASE("a raw view of a qcow2 reads as qemu-img decodes it", "[views]") {
  test::TempDir dir;
  std::string raw = test::RandomBytes(3 << 20, 11) + std::string(1 << 20, '\0') + test::TextBytes(2 << 20);
  test::WriteFile(dir / "src.raw", raw);
  std::string err;
  REQUIRE(RunCommand({"qemu-img", "convert", "-q", "-c", "-f", "raw", "-O", "qcow2", dir / "src.raw", dir / "d.qcow2"},
                     &err) == 0);
  CopyView v{"d.raw", ViewKind::kDecoded, raw.size(), "d.qcow2", {}, ""};
  ViewReader r(v, "vm@x:d.raw", LocalFiles(dir.path()));
  std::string out(raw.size(), '\0');
  REQUIRE(r.Read(0, out.size(), out.data()).ok());
  CHECK(out == raw);  // compressed clusters inflated, the zero cluster zeros
  std::string piece(100000, '\0');
  REQUIRE(r.Read(3000000, piece.size(), piece.data()).ok());
  CHECK(piece == raw.substr(3000000, piece.size()));
  CHECK_FALSE(r.Read(raw.size() - 10, 11, piece.data()).ok());  // beyond the end

  SECTION("a damaged header is an error, never zeros") {
    std::string img = test::ReadAll(dir / "d.qcow2");
    img.replace(40, 8, std::string("\x7f\xff\xff\xff\xff\xff\x00\x00", 8));  // L1 table far outside the file
    test::WriteFile(dir / "d.qcow2", img);
    ViewReader damaged(v, "vm@x:d.raw", LocalFiles(dir.path()));
    Status s = damaged.Read(0, piece.size(), piece.data());
    CHECK(s.code() == Code::kCorrupt);
    CHECK(s.message().find("d.qcow2") != std::string::npos);
  }
}

TEST_CASE("a flat view is its extents in order, ZERO extents as zeros", "[views]") {
  test::TempDir dir;
  std::string a = test::RandomBytes(8192, 1), b = test::RandomBytes(4096, 2);
  test::WriteFile(dir / "a-flat.vmdk", a);
  test::WriteFile(dir / "b-flat.vmdk", b);
  CopyView v{"a.raw", ViewKind::kExtents, 8192 + 1024 + 2048, "a.vmdk",
             {{"a-flat.vmdk", 0, 8192}, {"", 0, 1024}, {"b-flat.vmdk", 2048, 2048}}, ""};
  ViewReader r(v, "vm@x:a.raw", LocalFiles(dir.path()));
  std::string out(v.size, 'x');
  REQUIRE(r.Read(0, out.size(), out.data()).ok());
  CHECK(out == a + std::string(1024, '\0') + b.substr(2048));
  std::string mid(3000, 'x');
  REQUIRE(r.Read(7000, mid.size(), mid.data()).ok());
  CHECK(mid == out.substr(7000, 3000));
  CopyView beyond{"c.raw", ViewKind::kExtents, 8192, "c.vmdk", {{"b-flat.vmdk", 0, 8192}}, ""};
  ViewReader bad(beyond, "vm@x:c.raw", LocalFiles(dir.path()));
  CHECK(bad.Read(0, 10, mid.data()).code() == Code::kCorrupt);
}

TEST_CASE("a write through a view is kept under the view's name across restarts", "[views]") {
  test::TempDir dir;
  REQUIRE(Repository::Init(dir / "repo", 4096, Env::Default()).ok());
  REQUIRE(MkdirAll(dir / "vm").ok());
  test::WriteFile(dir / "vm/web.vmx", "displayName = \"web\"\n");
  auto repo = std::move(Repository::Open(dir / "repo", test::DefaultRepoOptions())).value();
  BackupOptions bo;
  bo.vm = "web";
  bo.vmdir = dir / "vm";
  REQUIRE(RunBackup(*repo, bo).ok());
  std::string id = std::move(repo->ListBackupIds("web")).value().at(0);
  const std::string text = "generated configuration\n";
  auto planner = [&](const std::shared_ptr<BackupTree>&) {
    CopyView v{"web.livemount.xml", ViewKind::kText, text.size(), "web.vmx", {}, text};
    return std::vector<std::shared_ptr<ViewReader>>{std::make_shared<ViewReader>(v, "web:x", nullptr)};
  };
  auto lookup = [&](Namespace& ns, const std::string& name) {
    auto vm = ns.Lookup(kRootIno, "web");
    REQUIRE(vm.ok());
    auto copy = ns.Lookup((*vm)->ino, id);
    REQUIRE(copy.ok());
    return ns.Lookup((*copy)->ino, name);
  };
  {
    auto overlays = std::move(OverlayStore::Open(dir / "state")).value();
    Namespace ns(*repo, overlays.get());
    ns.SetViewPlanner(planner);
    auto view = lookup(ns, "web.livemount.xml");
    REQUIRE(view.ok());
    CHECK((*view)->view_index == 0);
    CHECK((*view)->attr.st_size == static_cast<off_t>(text.size()));
    CHECK(*ns.GetXattr((*view)->ino, kViewXattr) == "web.vmx");
    CHECK(ns.SetXattr((*view)->ino, kViewXattr, "x", 0).code() == Code::kUnsupported);
    auto data = ns.EnsureData(**view);
    REQUIRE(data.ok());
    CHECK((*data)->size() == text.size());  // the view's bytes are the overlay's base
  }
  {
    auto overlays = std::move(OverlayStore::Open(dir / "state")).value();
    auto entries = overlays->Entries({"web", id});
    REQUIRE(entries.ok());
    REQUIRE(entries->size() == 1);
    CHECK(entries->at(0).second.view == "web.livemount.xml");
    Namespace ns(*repo, overlays.get());
    ns.SetViewPlanner(planner);
    auto view = lookup(ns, "web.livemount.xml");
    REQUIRE(view.ok());
    CHECK((*view)->view_index == 0);  // found again under its name
    CHECK((*view)->base_size == text.size());
    REQUIRE(ns.Remove((*view)->parent, "web.livemount.xml", false).ok());
  }
  {
    auto overlays = std::move(OverlayStore::Open(dir / "state")).value();
    Namespace ns(*repo, overlays.get());
    ns.SetViewPlanner(planner);
    CHECK(lookup(ns, "web.livemount.xml").status().code() == Code::kNotFound);  // a whiteout hides it
    // Without views (another planner, or none), an entry naming one has no base.
    Namespace plain(*repo, overlays.get());
    CHECK(lookup(plain, "web.livemount.xml").status().code() == Code::kNotFound);
  }
}

// Inputs written by someone else: a VM directory changed during its backup, names that are
// not UTF-8, manifests and option values crafted to escape or overflow.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "store/backup.h"
#include "base/json_bytes.h"
#include "store/restore.h"
#include "base/units.h"
#include "store/vm_scan.h"
#include "test/test_util.h"

using namespace lm;

namespace {

std::unique_ptr<Repository> NewRepo(const test::TempDir& dir) {
  REQUIRE(Repository::Init(dir / "repo", 4096, Env::Default()).ok());
  auto r = Repository::Open(dir / "repo", test::DefaultRepoOptions());
  REQUIRE(r.ok());
  return std::move(r).value();
}

const FileEntry* Find(const BackupManifest& m, const std::string& path) {
  for (auto& f : m.files)
    if (f.path == path) return &f;
  return nullptr;
}

}  // namespace

TEST_CASE("backup never follows a file swapped for a symlink after the scan") {
  test::TempDir dir;
  auto repo = NewRepo(dir);
  std::string secret = "root-only secret bytes\n";
  test::WriteFile(dir / "secret", secret);
  REQUIRE(MkdirAll(dir / "vm/sub").ok());
  test::WriteFile(dir / "vm/disk.raw", test::RandomBytes(20000, 3));
  test::WriteFile(dir / "vm/sub/vm.vmx", "config\n");
  test::WriteFile(dir / "vm/other.cfg", "other\n");
  BackupOptions o;
  o.vm = "vm";
  o.vmdir = dir / "vm";
  o.after_scan_for_test = [&] {
    // The file itself, a folder on the way, and a regular file replaced by another.
    REQUIRE(::unlink((dir / "vm/disk.raw").c_str()) == 0);
    REQUIRE(::symlink((dir / "secret").c_str(), (dir / "vm/disk.raw").c_str()) == 0);
    REQUIRE(::rename((dir / "vm/sub").c_str(), (dir / "sub-moved").c_str()) == 0);
    REQUIRE(MkdirAll(dir / "elsewhere").ok());
    test::WriteFile(dir / "elsewhere/vm.vmx", secret);
    REQUIRE(::symlink((dir / "elsewhere").c_str(), (dir / "vm/sub").c_str()) == 0);
    REQUIRE(::rename((dir / "secret").c_str(), (dir / "secret2").c_str()) == 0);
    test::WriteFile(dir / "vm/other.cfg.new", secret);
    REQUIRE(::rename((dir / "vm/other.cfg.new").c_str(), (dir / "vm/other.cfg").c_str()) == 0);
    REQUIRE(::rename((dir / "secret2").c_str(), (dir / "secret").c_str()) == 0);
  };
  auto r = RunBackup(*repo, o);
  REQUIRE(r.ok());
  CHECK(r->warnings.size() == 3);
  CHECK(Find(r->manifest, "disk.raw") == nullptr);
  CHECK(Find(r->manifest, "sub/vm.vmx") == nullptr);
  CHECK(Find(r->manifest, "other.cfg") == nullptr);
  // Nothing of the secret was stored: restore everything and look.
  RestoreOptions ro;
  ro.sync = false;
  REQUIRE(RunRestore(*repo, BackupRef{"vm", r->manifest.id}, dir / "out", ro).ok());
  CHECK_FALSE(PathExists(dir / "out/disk.raw"));
  CHECK_FALSE(PathExists(dir / "out/sub/vm.vmx"));
}

TEST_CASE("a file that shrinks while it is read is stored as read, flagged, never padded") {
  test::TempDir dir;
  REQUIRE(Repository::Init(dir / "repo", 4096, Env::Default()).ok());
  std::string data = test::RandomBytes(1 << 20, 5);
  REQUIRE(MkdirAll(dir / "vm").ok());
  test::WriteFile(dir / "vm/disk.raw", data);
  // The env truncates through a second descriptor on the first read.
  class Shrink : public Env {
   public:
    std::string path;
    uint64_t to = 0;
    std::atomic<bool> done{false};
    Status PRead(int fd, void* buf, size_t n, uint64_t off, size_t* got, const std::string& p) override {
      if (p.find("disk.raw") != std::string::npos && !done.exchange(true)) REQUIRE(::truncate(path.c_str(), to) == 0);
      return Env::PRead(fd, buf, n, off, got, p);
    }
  } env;
  env.path = dir / "vm/disk.raw";
  env.to = 300000 + 17;  // not on a chunk boundary
  RepoOptions ro;
  ro.env = &env;
  auto repo = Repository::Open(dir / "repo", ro);
  REQUIRE(repo.ok());
  BackupOptions o;
  o.vm = "vm";
  o.vmdir = dir / "vm";
  o.threads = 2;
  auto r = RunBackup(**repo, o);
  REQUIRE(r.ok());
  const FileEntry* f = Find(r->manifest, "disk.raw");
  REQUIRE(f != nullptr);
  CHECK(f->changed);
  CHECK(f->size == env.to);
  REQUIRE(r->warnings.size() == 1);
  CHECK(r->warnings[0].find("shrank") != std::string::npos);
  RestoreOptions rst;
  rst.sync = false;
  REQUIRE(RunRestore(**repo, BackupRef{"vm", r->manifest.id}, dir / "out", rst).ok());
  CHECK(test::ReadAll(dir / "out/disk.raw") == data.substr(0, env.to));
}

TEST_CASE("names that are not UTF-8 survive manifests byte for byte") {
  CHECK(IsValidUtf8("plain.vmdk"));
  CHECK(IsValidUtf8("d\xc3\xa9j\xc3\xa0"));
  CHECK_FALSE(IsValidUtf8("\xff"));
  CHECK_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  CHECK_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  CHECK(LossyUtf8("a\xff" "b") == "a\xef\xbf\xbd" "b");
  BackupManifest m;
  m.vm = "vm";
  m.id = "20261126T000000Z";
  m.chunk_size = 4096;
  m.source = "/srv/\xff";
  FileEntry d{"\xfe\xff-dir", FileType::kDir, 0755};
  FileEntry f{"\xfe\xff-dir/x\x01\x7f\xe9.raw", FileType::kFile, 0644};
  f.fidx = "files/0.fidx";
  FileEntry l{"link", FileType::kSymlink, 0777};
  l.target = "\xfe\xff-dir";
  m.files = {d, f, l};
  auto back = DecodeManifest(EncodeManifest(m), "backup.json");
  REQUIRE(back.ok());
  CHECK(back->files[1].path == f.path);
  CHECK(back->files[2].target == l.target);
  CHECK(back->source == m.source);
}

TEST_CASE("manifests with unsafe file lists are refused") {
  auto encode = [](std::vector<FileEntry> files) {
    BackupManifest m;
    m.vm = "vm";
    m.id = "20261126T000000Z";
    m.chunk_size = 4096;
    for (size_t i = 0; i < files.size(); i++)
      if (files[i].type == FileType::kFile) files[i].fidx = "files/" + std::to_string(i) + ".fidx";
    m.files = files;
    return DecodeManifest(EncodeManifest(m), "backup.json");
  };
  FileEntry dir{"d", FileType::kDir, 0755}, link{"l", FileType::kSymlink, 0777}, file{"f", FileType::kFile, 0644};
  link.target = "/etc";
  CHECK(encode({dir, file}).ok());
  FileEntry below_link = file;
  below_link.path = "l/x";
  CHECK(encode({link, below_link}).status().message().find("below a symlink") != std::string::npos);
  FileEntry below_file = file;
  below_file.path = "f/x";
  CHECK_FALSE(encode({file, below_file}).ok());
  CHECK(encode({file, file}).status().message().find("listed twice") != std::string::npos);
  for (std::string bad : {"a//b", "./a", "a/./b", "a/..", "/abs", "a/", ".."}) {
    FileEntry e = file;
    e.path = bad;
    CHECK(encode({dir, e}).status().message().find("normal form") != std::string::npos);
  }
  FileEntry orphan = file;
  orphan.path = "missing/x";
  CHECK_FALSE(encode({orphan}).ok());
}

TEST_CASE("OpenBeneath follows no symlink on the way") {
  test::TempDir dir;
  REQUIRE(MkdirAll(dir / "root/real").ok());
  test::WriteFile(dir / "root/real/f", "x");
  REQUIRE(MkdirAll(dir / "outside").ok());
  test::WriteFile(dir / "outside/f", "secret");
  REQUIRE(::symlink((dir / "outside").c_str(), (dir / "root/link").c_str()) == 0);
  REQUIRE(::symlink("real/f", (dir / "root/flink").c_str()) == 0);
  UniqueFd root(::open((dir / "root").c_str(), O_RDONLY | O_DIRECTORY));
  CHECK(OpenBeneath(root.get(), "real/f", O_RDONLY).ok());
  CHECK_FALSE(OpenBeneath(root.get(), "link/f", O_RDONLY).ok());
  CHECK_FALSE(OpenBeneath(root.get(), "flink", O_RDONLY).ok());
  CHECK_FALSE(OpenBeneath(root.get(), "../outside/f", O_RDONLY).ok());
}

TEST_CASE("sizes and durations are parsed strictly") {
  CHECK(*ParseSize("4096") == 4096);
  CHECK(*ParseSize("128K") == 128 << 10);
  CHECK(*ParseSize("1.5G") == 3ull << 29);
  CHECK(*ParseSize("10GiB") == 10ull << 30);
  for (std::string bad : {"", "1y", "-1G", "1e3", "nan", "inf", "1.2.3G", ".5G", "G", "99999999999T", "1 G"}) {
    INFO(bad);
    CHECK_FALSE(ParseSize(bad).ok());
  }
  CHECK(*ParseDuration("30s") == 30);
  CHECK(*ParseDuration("15m") == 900);
  CHECK(*ParseDuration("2h") == 7200);
  CHECK(*ParseDuration("1d") == 86400);
  CHECK(*ParseDuration("1w") == 604800);
  CHECK(*ParseDuration("1h30m") == 5400);
  for (std::string bad : {"", "1y", "1", "h", "1.5h", "-1h", "0s", "1h 30m", "10000000000s", "6000w"}) {
    INFO(bad);
    CHECK_FALSE(ParseDuration(bad).ok());
  }
  CHECK(CheckRange("--threads", 100000, 1, 64).message().find("--threads") != std::string::npos);
}

TEST_CASE("backup options are range-checked") {
  BackupOptions o;
  o.vm = "vm";
  o.vmdir = "/nonexistent";
  o.threads = 100000;
  CHECK(o.validate().message().find("--threads") != std::string::npos);
}

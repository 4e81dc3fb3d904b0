// Power loss at every step (test/power_loss_env.h): what the headers of the crash-sensitive
// local formats promise must hold after unsynced changes are dropped.
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>

#include "cache/read_cache.h"
#include "fs/inode_index.h"
#include "fs/overlay_file.h"
#include "fs/overlay_store.h"
#include "test/rocks_fault_fs.h"
#include "test/power_loss_env.h"
#include "test/test_util.h"

using namespace lm;

namespace {

// What an overlay file may read as after a power loss: per block, the content it had at
// the last Sync or any content it had since (an unsynced write may land or not, per block,
// never half); and the size it had at the last Sync or since.
struct Model {
  std::string bytes;
  // Per block, every content it had since the last Sync, with the sizes the file had from
  // then on (a version that ended inside the block reads zeros after its end once the
  // file grew, if the writes that filled it were lost while the size stayed).
  std::vector<std::map<std::string, std::set<uint64_t>>> versions;
  std::set<uint64_t> sizes;

  std::string Block(const std::string& b, uint64_t i) const {
    return i * kOverlayBlock < b.size() ? b.substr(i * kOverlayBlock, kOverlayBlock) : std::string();
  }
  void Note() {  // after every change
    sizes.insert(bytes.size());
    uint64_t n = (bytes.size() + kOverlayBlock - 1) / kOverlayBlock;
    if (versions.size() < n) versions.resize(n);
    for (auto& block : versions)
      for (auto& [content, later] : block) later.insert(bytes.size());
    for (uint64_t i = 0; i < n; i++) versions[i][Block(bytes, i)].insert(bytes.size());
  }
  void Synced() {
    versions.clear();
    sizes.clear();
    Note();
  }
  // "" if `got` is a state the file may be in, else what is wrong.
  std::string Check(const std::string& got) const {
    if (!sizes.count(got.size())) return "size " + std::to_string(got.size()) + " was never synced nor written";
    for (uint64_t i = 0; i * kOverlayBlock < got.size(); i++) {
      std::string b = Block(got, i);
      bool ok = b.find_first_not_of('\0') == std::string::npos &&
                (i >= versions.size() || versions[i].empty());  // never had bytes: zeros
      if (i < versions.size()) {
        for (auto& [v, later] : versions[i]) {
          if (v.substr(0, b.size()) == b) ok = true;
          std::string padded = v + std::string(kOverlayBlock - v.size(), '\0');
          if (padded.substr(0, b.size()) == b && later.count(got.size())) ok = true;
        }
      }
      if (!ok) return "block " + std::to_string(i) + " holds bytes it never had at that size";
    }
    return "";
  }
};

}  // namespace

TEST_CASE("an overlay file keeps every synced byte and half-records nothing at a power loss at any step",
          "[overlay][powerloss]") {
  test::PowerLossEnv env;
  const std::string base = test::RandomBytes(40 * kOverlayBlock + 100, 9);
  RangeReader reader = [&](uint64_t off, size_t len, char* out) {
    std::memcpy(out, base.data() + off, len);
    return Status::Ok();
  };
  int trials = 0, crashed = 0;
  for (uint32_t seed = 1; seed <= 300; seed++) {
    test::TempDir dir;
    std::mt19937_64 rng(seed);
    auto opened = OverlayFile::Open(&env, dir.path(), "f", base.size());
    REQUIRE(opened.ok());
    std::unique_ptr<OverlayFile> f = std::move(opened).value();
    Model m{base};
    m.Synced();
    env.FailAfter(static_cast<int>(rng() % 120));  // the power goes after this many changes
    bool dead = false;
    std::string log;
    for (int op = 0; op < 80 && !dead; op++) {
      uint64_t off = rng() % (60 * kOverlayBlock), len = 1 + rng() % (3 * kOverlayBlock);
      Status s;
      switch (rng() % 7) {
        case 0: case 1: case 2: {
          std::string data = test::RandomBytes(len, rng());
          s = f->Write(off, data.data(), data.size(), reader);
          log += "W" + std::to_string(off) + "+" + std::to_string(len) + (s.ok() ? " " : "! ");
          if (s.ok()) {
            if (m.bytes.size() < off + len) m.bytes.resize(off + len, '\0');
            m.bytes.replace(off, len, data);
          }
          break;
        }
        case 3: {
          uint64_t size = rng() % (60 * kOverlayBlock);
          s = f->Truncate(size);
          log += "T" + std::to_string(size) + (s.ok() ? " " : "! ");
          if (s.ok()) m.bytes.resize(size, '\0');
          break;
        }
        case 4: {
          s = f->Zero(off, len, reader);
          log += "Z" + std::to_string(off) + "+" + std::to_string(len) + (s.ok() ? " " : "! ");
          if (s.ok() && off < m.bytes.size()) {
            uint64_t end = std::min<uint64_t>(off + len, m.bytes.size());
            std::fill(m.bytes.begin() + off, m.bytes.begin() + end, '\0');
          }
          break;
        }
        default:
          s = f->Sync();
          log += std::string("S") + (s.ok() ? " " : "! ");
          if (s.ok()) m.Synced();
          break;
      }
      if (!s.ok()) {
        dead = true;
        break;
      }
      m.Note();
    }
    trials++;
    crashed += dead;
    f.reset();            // the process is gone with the power
    env.DropUnsynced();   // and so is everything it had not synced
    // Reopening replays and compacts the journal: lose power there too, once.
    env.FailAfter(static_cast<int>(rng() % 6));
    (void)OverlayFile::Open(&env, dir.path(), "f", base.size());
    env.DropUnsynced();
    auto back = OverlayFile::Open(&env, dir.path(), "f", base.size());
    REQUIRE(back.ok());
    std::string got((*back)->size(), '?');
    REQUIRE((*back)->Read(0, got.size(), got.data(), reader).ok());
    INFO("seed " << seed << " size " << got.size() << " ops " << log);
    CHECK(m.Check(got) == "");
  }
  CHECK(crashed > trials / 3);  // the power went mid-run, not only at the end
}

TEST_CASE("the read-cache never serves a slot whose bytes were lost at a power loss", "[cache][powerloss]") {
  // The cache never syncs its data file (it can always fetch again), while its RocksDB
  // index survives: after a power loss, index entries point at slots holding older bytes
  // or nothing. Every such read must be a miss (the entry dropped), never wrong bytes.
  constexpr uint32_t kSlot = 16384;
  test::PowerLossEnv env;
  test::TempDir dir;
  auto chunk = [](int i) { return test::RandomBytes(kSlot - (i % 3) * 1000, 500 + i); };
  {
    auto c = ReadCache::Open(CacheOptions{&env, dir / "c", 8 * kSlot, kSlot});
    REQUIRE(c.ok());
    for (int i = 0; i < 8; i++) REQUIRE((*c)->Insert(Digest::Of(chunk(i)), chunk(i)).ok());
    env.WrittenBack();  // these slots reached the disk
    for (int i = 8; i < 20; i++) REQUIRE((*c)->Insert(Digest::Of(chunk(i)), chunk(i)).ok());  // evict, reuse
  }
  env.DropUnsynced();
  auto c = ReadCache::Open(CacheOptions{&env, dir / "c", 8 * kSlot, kSlot});
  REQUIRE(c.ok());
  int hits = 0;
  for (int i = 0; i < 20; i++) {
    std::string want = chunk(i), got(want.size(), '\0');
    Status s = (*c)->Read(Digest::Of(want), 0, static_cast<uint32_t>(want.size()), got.data());
    INFO("chunk " << i << ": " << s.ToString());
    CHECK((s.ok() || s.code() == Code::kNotFound));
    if (s.ok()) {
      CHECK(got == want);
      hits++;
    }
  }
  CHECK((*c)->Stats().corrupt_dropped > 0);  // lost slots were found and dropped
  // Dropped entries are fetched again: inserting works as before.
  REQUIRE((*c)->Insert(Digest::Of(chunk(19)), chunk(19)).ok());
  std::string again(chunk(19).size(), '\0');
  CHECK((*c)->Read(Digest::Of(chunk(19)), 0, static_cast<uint32_t>(again.size()), again.data()).ok());
  CHECK(again == chunk(19));
}

// The overlay store (RocksDB, not through lm::Env): a change applied with sync survives a
// power loss whole; one without may be lost, but only whole (a batch is atomic), and a torn
// write-ahead log never keeps the store from opening.
TEST_CASE("the overlay store keeps every synced change at a power loss", "[overlay][powerloss]") {
  const BackupRef b{"vm1", "20261126T000000Z"};
  for (uint64_t torn : {0, 1, 13, 100, 4096}) {
    test::TempDir dir;
    std::map<std::string, uint64_t> synced, unsynced;  // path -> ino written
    {
      test::RocksFaultFs fs;
      {
        auto store = OverlayStore::Open(dir.path(), fs.env());
        REQUIRE(store.ok());
        for (int i = 0; i < 40; i++) {
          bool sync = i % 3 != 2;
          OverlayEntry e;
          e.ino = 1000 + i;
          e.fid = "f" + std::to_string(i);
          std::string a = "dir/a" + std::to_string(i), c = "dir/c" + std::to_string(i);
          // Two paths per batch: after the loss both are there or neither.
          REQUIRE((*store)->Apply(b, {{a, e}, {c, e}}, sync).ok());
          (sync ? synced : unsynced)[a] = e.ino;
        }
      }  // closed: what the kernel had is now only as durable as what was synced
      fs.DropUnsynced(torn);
    }
    INFO("torn tail " << torn);
    auto store = OverlayStore::Open(dir.path());
    REQUIRE(store.ok());
    auto entries = (*store)->Entries(b);
    REQUIRE(entries.ok());
    std::map<std::string, uint64_t> found;
    for (auto& [path, e] : *entries) found[path] = e.ino;
    for (auto& [path, ino] : synced) CHECK(found[path] == ino);
    for (auto& [path, ino] : found) {
      std::string twin = path[4] == 'a' ? "dir/c" + path.substr(5) : "dir/a" + path.substr(5);
      CHECK(found.count(twin) == 1);  // a batch is all or nothing
      CHECK(ino >= 1000);
    }
  }
}

// The inode index is never synced (inode_index.h): after a power loss it opens, every
// record left is exact, and the namespace gives each path the number it had before.
TEST_CASE("the inode index survives a power loss with exact records or none", "[inodes][powerloss]") {
  for (uint64_t torn : {0, 5, 64, 1000}) {
    test::TempDir dir;
    std::map<uint64_t, InodeRecord> written;
    {
      test::RocksFaultFs fs;
      {
        auto index = InodeIndex::Open(dir.path(), fs.env());
        REQUIRE(index.ok());
        for (uint64_t batch = 0; batch < 20; batch++) {
          std::vector<std::pair<uint64_t, InodeRecord>> records;
          for (uint64_t i = 0; i < 10; i++) {
            uint64_t ino = 100 + batch * 10 + i;
            records.push_back({ino, InodeRecord{batch + 1, static_cast<uint32_t>(i + 1), "name-" + std::to_string(ino)}});
            written[ino] = records.back().second;
          }
          REQUIRE((*index)->Put(records).ok());
        }
      }
      fs.DropUnsynced(torn);
    }
    INFO("torn tail " << torn);
    auto index = InodeIndex::Open(dir.path());
    REQUIRE(index.ok());
    for (auto& [ino, want] : written) {
      auto got = (*index)->Get(ino);
      if (!got) continue;  // lost with the unsynced log: the namespace numbers it again
      CHECK(got->parent == want.parent);
      CHECK(got->generation == want.generation);
      CHECK(got->name == want.name);
    }
  }
}

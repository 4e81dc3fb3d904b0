#include <catch2/catch.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "fs/overlay_file.h"
#include "test/test_util.h"

using namespace lm;

namespace {

// A base file in memory that counts the bytes read from it.
struct Base {
  std::string bytes;
  uint64_t reads = 0, bytes_read = 0;
  RangeReader reader() {
    return [this](uint64_t off, size_t len, char* out) {
      REQUIRE(off + len <= bytes.size());
      reads++;
      bytes_read += len;
      std::memcpy(out, bytes.data() + off, len);
      return Status::Ok();
    };
  }
};

std::unique_ptr<OverlayFile> Open(const std::string& dir, uint64_t base_size) {
  auto f = OverlayFile::Open(Env::Default(), dir, "f", base_size);
  REQUIRE(f.ok());
  return std::move(f).value();
}

std::string ReadAll(OverlayFile& f, Base& b) {
  std::string out(f.size(), '?');
  REQUIRE(f.Read(0, out.size(), out.data(), b.reader()).ok());
  return out;
}

}  // namespace

TEST_CASE("an overlay shows the base until written, byte-exact at any offset", "[overlay]") {
  test::TempDir dir;
  Base base{test::RandomBytes(10 * kOverlayBlock + 123, 1)};
  auto f = Open(dir.path(), base.bytes.size());
  CHECK(ReadAll(*f, base) == base.bytes);
  std::string want = base.bytes;
  std::string data = test::RandomBytes(5000, 2);
  REQUIRE(f->Write(4000, data.data(), data.size(), base.reader()).ok());
  want.replace(4000, 5000, data);
  CHECK(ReadAll(*f, base) == want);
  CHECK(f->size() == want.size());
  std::string mid(17, '\0');
  REQUIRE(f->Read(8190, 17, mid.data(), base.reader()).ok());
  CHECK(mid == want.substr(8190, 17));
}

TEST_CASE("whole-block writes never read the base, partial ones read one block", "[overlay]") {
  test::TempDir dir;
  Base base{test::RandomBytes(16 * kOverlayBlock, 3)};
  auto f = Open(dir.path(), base.bytes.size());
  std::string blocks = test::RandomBytes(3 * kOverlayBlock, 4);
  REQUIRE(f->Write(2 * kOverlayBlock, blocks.data(), blocks.size(), base.reader()).ok());
  CHECK(base.reads == 0);
  REQUIRE(f->Write(8 * kOverlayBlock + 10, "abc", 3, base.reader()).ok());
  CHECK(base.reads == 1);
  CHECK(base.bytes_read == kOverlayBlock);
  REQUIRE(f->Write(8 * kOverlayBlock + 100, "xyz", 3, base.reader()).ok());  // now present
  CHECK(base.reads == 1);
  CHECK(f->present_blocks() == 4);
}

TEST_CASE("truncate hides the base for good, extending reads zeros", "[overlay]") {
  test::TempDir dir;
  Base base{test::RandomBytes(8 * kOverlayBlock, 5)};
  auto f = Open(dir.path(), base.bytes.size());
  REQUIRE(f->Write(100, "hello", 5, base.reader()).ok());
  REQUIRE(f->Truncate(102).ok());
  REQUIRE(f->Truncate(3 * kOverlayBlock).ok());
  std::string want = base.bytes.substr(0, 100) + "he" + std::string(3 * kOverlayBlock - 102, '\0');
  CHECK(ReadAll(*f, base) == want);
  REQUIRE(f->Write(5 * kOverlayBlock, "z", 1, base.reader()).ok());  // a hole before it
  CHECK(f->size() == 5 * kOverlayBlock + 1);
  std::string all = ReadAll(*f, base);
  CHECK(all.substr(0, want.size()) == want);
  CHECK(all.substr(want.size(), 2 * kOverlayBlock) == std::string(2 * kOverlayBlock, '\0'));
  CHECK(all.back() == 'z');
}

TEST_CASE("synced state survives a reopen, unsynced writes do not reach the journal",
          "[overlay]") {
  test::TempDir dir;
  Base base{test::RandomBytes(4 * kOverlayBlock, 6)};
  std::string synced;
  {
    auto f = Open(dir.path(), base.bytes.size());
    REQUIRE(f->Write(kOverlayBlock, "synced!", 7, base.reader()).ok());
    REQUIRE(f->Truncate(3 * kOverlayBlock + 5).ok());
    REQUIRE(f->Sync().ok());
    synced = ReadAll(*f, base);
    // Written but never synced, then the process "dies" (no Sync, no flush on destruction).
    std::string late = test::RandomBytes(2 * kOverlayBlock, 7);
    REQUIRE(f->Write(10 * kOverlayBlock, late.data(), late.size(), base.reader()).ok());
  }
  auto f = Open(dir.path(), base.bytes.size());
  CHECK(f->size() == 3 * kOverlayBlock + 5);
  CHECK(ReadAll(*f, base) == synced);
}

TEST_CASE("a torn journal tail is ignored", "[overlay]") {
  test::TempDir dir;
  Base base{test::RandomBytes(4 * kOverlayBlock, 8)};
  std::string synced;
  {
    auto f = Open(dir.path(), base.bytes.size());
    REQUIRE(f->Write(0, "first", 5, base.reader()).ok());
    REQUIRE(f->Sync().ok());
    synced = ReadAll(*f, base);
  }
  int fd = ::open((dir / "f.journal").c_str(), O_WRONLY | O_APPEND);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, "LMOJ\x01garbage-half-record", 22) == 22);
  ::close(fd);
  auto f = Open(dir.path(), base.bytes.size());
  CHECK(ReadAll(*f, base) == synced);
}

TEST_CASE("random reads, writes, truncates and syncs match a reference file", "[overlay]") {
  for (uint64_t seed : {11, 22, 33}) {
    DYNAMIC_SECTION("seed " << seed) {
      test::TempDir dir;
      std::mt19937_64 rng(seed);
      Base base{test::RandomBytes(256 * 1024 + 777, seed)};
      std::string model = base.bytes;  // what the file must read as
      std::string synced_model = model;
      auto f = Open(dir.path(), base.bytes.size());
      std::string buf;
      int mismatches = 0;
      const uint64_t max_size = 640 * 1024;
      for (int op = 0; op < 35000; op++) {
        uint64_t r = rng() % 100;
        if (r < 45) {  // write: unaligned, sometimes whole blocks, sometimes past the end
          uint64_t off = rng() % (max_size - 70000);
          size_t len = 1 + rng() % (rng() % 4 == 0 ? 65536 : 9000);
          if (rng() % 3 == 0) off = off / kOverlayBlock * kOverlayBlock;
          buf = test::RandomBytes(len, rng());
          REQUIRE(f->Write(off, buf.data(), len, base.reader()).ok());
          if (off > model.size()) model.resize(off, '\0');
          if (off + len > model.size()) model.resize(off + len, '\0');
          model.replace(off, len, buf);
        } else if (r < 85) {  // read
          if (model.empty()) continue;
          uint64_t off = rng() % model.size();
          size_t len = 1 + rng() % std::min<uint64_t>(model.size() - off, 70000);
          buf.assign(len, '?');
          REQUIRE(f->Read(off, len, buf.data(), base.reader()).ok());
          if (buf != model.substr(off, len)) mismatches++;
        } else if (r < 93) {  // truncate, down or up
          uint64_t size = rng() % max_size;
          REQUIRE(f->Truncate(size).ok());
          model.resize(size, '\0');
        } else if (r < 99) {
          REQUIRE(f->Sync().ok());
          synced_model = model;
        } else {  // sync and reopen: a restart of the daemon
          REQUIRE(f->Sync().ok());
          f.reset();
          f = Open(dir.path(), base.bytes.size());
          synced_model = model;
        }
        REQUIRE(f->size() == model.size());
      }
      CHECK(mismatches == 0);
      CHECK(ReadAll(*f, base) == model);
      // A crash now loses exactly what was not synced.
      REQUIRE(f->Sync().ok());
      f.reset();
      f = Open(dir.path(), base.bytes.size());
      CHECK(ReadAll(*f, base) == model);
    }
  }
}

// The guest view's logic on synthetic disks: range sets merge, MBR with an EBR chain, GPT
// checksums, and partitions that lie outside the disk.
#include <catch2/catch.hpp>
#include <zlib.h>

#include <cstring>

#include "guest/filesystem.h"
#include "guest/partitions.h"
#include "base/bytes.h"

using namespace lm;

namespace {

void MbrEntry(std::string* d, uint64_t at, int slot, uint8_t type, uint32_t start, uint32_t count) {
  char* e = d->data() + at + 446 + 16 * slot;
  e[4] = static_cast<char>(type);
  std::string v;
  PutU32(&v, start);
  PutU32(&v, count);
  std::memcpy(e + 8, v.data(), 8);
  (*d)[at + 510] = '\x55';
  (*d)[at + 511] = '\xaa';
}

DiskImage Raw(const std::string& d) {
  auto img = DiskImage::Open(
      [&d](uint64_t off, size_t len, char* out) {
        std::memcpy(out, d.data() + off, len);
        return Status::Ok();
      },
      d.size(), "test");
  REQUIRE(img.ok());
  return std::move(img).value();
}

}  // namespace

TEST_CASE("range sets merge overlapping and touching ranges") {
  RangeSet r;
  r.Add(100, 10);
  r.Add(0, 50);
  r.Add(50, 10);
  r.Add(105, 20);
  r.Add(500, 0);
  REQUIRE(r.ranges() == std::vector<std::pair<uint64_t, uint64_t>>{{0, 60}, {100, 25}});
  CHECK(r.bytes() == 85);
}

TEST_CASE("MBR with an extended partition lists primary and logical partitions") {
  std::string d(8 << 20, '\0');
  MbrEntry(&d, 0, 0, 0x83, 2048, 2048);
  MbrEntry(&d, 0, 1, 0x05, 4096, 8192);
  MbrEntry(&d, 4096 * 512, 0, 0x07, 63, 1000);   // logical 5
  MbrEntry(&d, 4096 * 512, 1, 0x05, 2048, 2048); // link to the next EBR
  MbrEntry(&d, 6144 * 512, 0, 0x83, 63, 500);    // logical 6
  DiskImage img = Raw(d);
  auto t = ReadPartitions(img, "disk");
  REQUIRE(t.ok());
  CHECK(t->scheme == "mbr");
  REQUIRE(t->parts.size() == 3);
  CHECK(t->parts[0].number == 1);
  CHECK(t->parts[1].number == 5);
  CHECK(t->parts[1].start == (4096 + 63) * 512ull);
  CHECK(t->parts[2].number == 6);
  CHECK(t->parts[2].start == (6144 + 63) * 512ull);
  CHECK(t->parts[2].logical);
}

TEST_CASE("damaged partition tables are errors naming the disk") {
  std::string d(4 << 20, '\0');
  SECTION("a partition past the end of the disk") {
    MbrEntry(&d, 0, 0, 0x83, 2048, 1 << 20);
    auto t = ReadPartitions(Raw(d), "vm@1:disk.raw");
    REQUIRE_FALSE(t.ok());
    CHECK(t.status().message().find("vm@1:disk.raw: partition 1 lies outside the disk") != std::string::npos);
  }
  SECTION("a GPT header whose checksum does not match") {
    MbrEntry(&d, 0, 0, 0xEE, 1, 8191);
    std::memcpy(d.data() + 512, "EFI PART", 8);
    std::string v;
    PutU32(&v, 92);
    std::memcpy(d.data() + 512 + 12, v.data(), 4);
    auto t = ReadPartitions(Raw(d), "disk");
    REQUIRE_FALSE(t.ok());
    CHECK(t.status().message().find("GPT header checksum mismatch") != std::string::npos);
  }
  SECTION("an EBR chain that loops") {
    MbrEntry(&d, 0, 0, 0x05, 2048, 4096);
    MbrEntry(&d, 2048 * 512, 1, 0x05, 0 + 1, 10);  // links to start + 1 ...
    MbrEntry(&d, 2049 * 512, 1, 0x05, 0, 10);      // ... which links back to start (0 ends)
    MbrEntry(&d, 2049 * 512, 1, 0x05, 1, 10);      // no: links to itself, forever
    auto t = ReadPartitions(Raw(d), "disk");
    REQUIRE_FALSE(t.ok());
    CHECK(t.status().message().find("EBR chain loops") != std::string::npos);
  }
}

TEST_CASE("a disk without a partition table is one whole-disk volume") {
  std::string d(2 << 20, '\0');
  auto t = ReadPartitions(Raw(d), "disk");
  REQUIRE(t.ok());
  CHECK(t->scheme == "none");
  REQUIRE(t->parts.size() == 1);
  CHECK(t->parts[0].number == 0);
  CHECK(t->parts[0].size == d.size());
}

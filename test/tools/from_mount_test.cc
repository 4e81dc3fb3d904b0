// backup --from-mount (tools/cli/from_mount.h): a chunk keeps its digest from the copy the
// mount shows only when nothing was written in it, it lies below the base limit, and it is
// as long as the base file's own chunk; every other chunk is read again.
#include <catch2/catch.hpp>

#include "tools/cli/from_mount.h"

using namespace lm;
using namespace lm::cli;

namespace {

std::vector<Digest> BaseDigests(size_t n) {
  std::vector<Digest> d(n);
  for (size_t i = 0; i < n; i++) d[i] = Digest::Of("chunk " + std::to_string(i));
  return d;
}

}  // namespace

TEST_CASE("from-mount: unchanged chunks keep their digest, the others are read") {
  const uint64_t cs = 128 << 10;
  auto base = BaseDigests(4);
  control::ChangesReply::File f;
  f.path = "disk-flat.vmdk";
  f.base = 0;
  f.base_size = f.size = f.base_limit = 3 * cs + 100;  // four chunks, the last of 100 bytes
  // A write of one 4 KiB block inside chunk 1.
  f.written = {{cs + 8192, cs + 12288}};
  CHECK(*UnchangedChunk(f, base, cs, 0) == base[0]);
  CHECK_FALSE(UnchangedChunk(f, base, cs, 1)->has_value());
  CHECK(*UnchangedChunk(f, base, cs, 2) == base[2]);
  CHECK(*UnchangedChunk(f, base, cs, 3) == base[3]);
  CHECK_FALSE(UnchangedChunk(f, base, cs, 4)->has_value());  // past the end

  SECTION("a write touching a chunk's first or last byte") {
    f.written = {{cs - 4096, cs}, {3 * cs, 3 * cs + 4096}};
    CHECK_FALSE(UnchangedChunk(f, base, cs, 0)->has_value());
    CHECK(*UnchangedChunk(f, base, cs, 1) == base[1]);
    CHECK_FALSE(UnchangedChunk(f, base, cs, 3)->has_value());
  }
  SECTION("a file that grew: the old last chunk is longer now") {
    f.written.clear();
    f.size = 5 * cs;
    CHECK(*UnchangedChunk(f, base, cs, 2) == base[2]);
    CHECK_FALSE(UnchangedChunk(f, base, cs, 3)->has_value());
    CHECK_FALSE(UnchangedChunk(f, base, cs, 4)->has_value());
  }
  SECTION("a file that shrank: the new last chunk is shorter") {
    f.written.clear();
    f.size = f.base_limit = 2 * cs + 10;
    CHECK(*UnchangedChunk(f, base, cs, 1) == base[1]);
    CHECK_FALSE(UnchangedChunk(f, base, cs, 2)->has_value());
  }
  SECTION("truncated and grown again: past the base limit it reads as zeros") {
    f.written.clear();
    f.base_limit = cs + 5;
    CHECK(*UnchangedChunk(f, base, cs, 0) == base[0]);
    CHECK_FALSE(UnchangedChunk(f, base, cs, 1)->has_value());
    CHECK_FALSE(UnchangedChunk(f, base, cs, 2)->has_value());
  }
  SECTION("a new file has no base") {
    f.base = -1;
    CHECK_FALSE(UnchangedChunk(f, base, cs, 0)->has_value());
  }
}

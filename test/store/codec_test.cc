#include <catch2/catch.hpp>

#include "store/codec.h"
#include "test/test_util.h"

using namespace lm;

TEST_CASE("Compressible chunks are stored with zstd and decode exactly", "[codec]") {
  std::string raw = test::TextBytes(128 * 1024);
  std::string stored;
  REQUIRE(CompressChunk(raw, 3, &stored) == Codec::kZstd);
  CHECK(stored.size() < raw.size() / 2);
  std::string out(raw.size(), '\0');
  REQUIRE(DecompressChunk(Codec::kZstd, stored, raw.size(), out.data(), "t").ok());
  CHECK(out == raw);
}

TEST_CASE("Incompressible chunks are stored raw", "[codec]") {
  std::string raw = test::RandomBytes(128 * 1024, 7);
  std::string stored;
  CHECK(CompressChunk(raw, 3, &stored) == Codec::kNone);
  CHECK(stored == raw);
  CHECK(CompressChunk(test::TextBytes(4096), 0, &stored) == Codec::kNone);  // level 0: raw
}

TEST_CASE("Damaged compressed data is an error, never wrong bytes", "[codec]") {
  std::string raw = test::TextBytes(64 * 1024);
  std::string stored;
  REQUIRE(CompressChunk(raw, 3, &stored) == Codec::kZstd);
  std::string out(raw.size(), '\0');
  SECTION("truncated stream") {
    Status s = DecompressChunk(Codec::kZstd, std::string_view(stored).substr(0, stored.size() / 2),
                               raw.size(), out.data(), "chunk X");
    CHECK(s.code() == Code::kCorrupt);
    CHECK(s.message().find("chunk X") != std::string::npos);
  }
  SECTION("wrong expected length") {
    CHECK_FALSE(DecompressChunk(Codec::kZstd, stored, raw.size() - 1, out.data(), "c").ok());
  }
  SECTION("raw chunk of the wrong length") {
    CHECK(DecompressChunk(Codec::kNone, "abc", 4, out.data(), "c").code() == Code::kCorrupt);
  }
  SECTION("unknown codec") {
    CHECK(DecompressChunk(static_cast<Codec>(9), stored, raw.size(), out.data(), "c").code() ==
          Code::kCorrupt);
  }
}

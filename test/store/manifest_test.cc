#include <catch2/catch.hpp>

#include "store/manifest.h"

using namespace lm;

TEST_CASE("Backup manifests round-trip", "[manifest]") {
  BackupManifest m;
  m.vm = "web01";
  m.id = "20261125T103746Z";
  m.time_ns = 1764067066123456789;
  m.chunk_size = 131072;
  m.logical_bytes = 42;
  m.files.push_back({"disk.vmdk", FileType::kFile, 0644, 1, 2, 5, 6, 42, "", "files/0.fidx"});
  m.files.push_back({"sub", FileType::kDir, 0755, 0, 0, 7, 8, 0, "", ""});
  m.files.push_back({"link", FileType::kSymlink, 0777, 0, 0, 9, 9, 9, "disk.vmdk", ""});
  auto back = DecodeManifest(EncodeManifest(m), "backup.json");
  REQUIRE(back.ok());
  CHECK(back->vm == "web01");
  CHECK(back->time_ns == m.time_ns);
  REQUIRE(back->files.size() == 3);
  CHECK(back->files[0].fidx == "files/0.fidx");
  CHECK(back->files[0].mode == 0644);
  CHECK(back->files[0].mtime_ns == 5);
  CHECK(back->files[1].type == FileType::kDir);
  CHECK(back->files[2].target == "disk.vmdk");
}

TEST_CASE("Bad manifests are rejected with the file named", "[manifest]") {
  CHECK(DecodeManifest("{", "b.json").status().message().find("b.json") == 0);
  CHECK_FALSE(DecodeManifest("{\"format\":\"other\"}", "b.json").ok());
  BackupManifest m;
  m.vm = "v";
  m.id = "i";
  m.chunk_size = 4096;
  m.files.push_back({"../escape", FileType::kFile, 0644, 0, 0, 0, 0, 0, "", "files/0.fidx"});
  auto r = DecodeManifest(EncodeManifest(m), "b.json");
  CHECK(r.status().code() == Code::kCorrupt);
}

TEST_CASE("File chunk indexes round-trip and detect damage", "[manifest]") {
  FileChunks f;
  f.chunk_size = 4096;
  f.file_size = 4096 * 3 + 100;
  f.digests = {Digest::Of("a"), Digest{}, Digest::Of("c"), Digest::Of("d")};
  CHECK(f.ChunkLen(3) == 100);
  std::string data = EncodeFidx(f);
  auto back = DecodeFidx(data, "0.fidx");
  REQUIRE(back.ok());
  CHECK(back->digests == f.digests);
  CHECK(back->file_size == f.file_size);
  for (size_t pos = 0; pos < data.size(); pos += 11) {
    std::string bad = data;
    bad[pos] ^= 0x10;
    CHECK_FALSE(DecodeFidx(bad, "0.fidx").ok());
  }
  CHECK_FALSE(DecodeFidx(data.substr(0, data.size() - 32), "0.fidx").ok());
}

TEST_CASE("Backup ids and VM names", "[manifest]") {
  CHECK(BackupIdForTime(0) == "19700101T000000Z");
  CHECK(IsValidName("web-01.prod_a"));
  CHECK_FALSE(IsValidName(""));
  CHECK_FALSE(IsValidName(".hidden"));
  CHECK_FALSE(IsValidName("a/b"));
  CHECK_FALSE(IsValidName("a b"));
}

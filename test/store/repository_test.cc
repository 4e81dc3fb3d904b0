#include <catch2/catch.hpp>

#include "store/repository.h"
#include "test/test_util.h"

using namespace lm;

TEST_CASE("init creates a repository once, and only in an empty directory", "[repository]") {
  test::TempDir dir;
  std::string repo = dir / "repo";
  REQUIRE(Repository::Init(repo, 65536, Env::Default()).ok());
  CHECK(Repository::Init(repo, 65536, Env::Default()).code() == Code::kExists);
  auto r = Repository::Open(repo, test::DefaultRepoOptions());
  REQUIRE(r.ok());
  CHECK((*r)->chunk_size() == 65536);
  CHECK((*r)->ListVms()->empty());

  test::WriteFile(dir / "file", "x");
  CHECK(Repository::Init(dir / "file", 65536, Env::Default()).code() == Code::kExists);
  REQUIRE(MkdirAll(dir / "full").ok());
  test::WriteFile(dir / "full/x", "x");
  Status s = Repository::Init(dir / "full", 65536, Env::Default());
  CHECK(s.code() == Code::kExists);
  CHECK(s.message().find("not empty") != std::string::npos);
  CHECK(Repository::Init(dir / "odd", 100000, Env::Default()).code() == Code::kInvalid);
  CHECK(Repository::Init(dir / "small", 1024, Env::Default()).code() == Code::kInvalid);
}

TEST_CASE("open names what is wrong", "[repository]") {
  test::TempDir dir;
  CHECK(Repository::Open(dir / "missing", test::DefaultRepoOptions()).status().code() == Code::kNotFound);
  CHECK(Repository::Open(dir.path(), test::DefaultRepoOptions()).status().message().find("not a livemount repository") !=
        std::string::npos);
  REQUIRE(Repository::Init(dir / "r", 131072, Env::Default()).ok());
  test::WriteFile(dir / "r/config", "{not json");
  auto r = Repository::Open(dir / "r", test::DefaultRepoOptions());
  CHECK(r.status().code() == Code::kCorrupt);
  CHECK(r.status().message().find("config") != std::string::npos);
}

TEST_CASE("unknown VMs and backups are NotFound", "[repository]") {
  test::TempDir dir;
  REQUIRE(Repository::Init(dir / "r", 131072, Env::Default()).ok());
  auto r = Repository::Open(dir / "r", test::DefaultRepoOptions());
  REQUIRE(r.ok());
  CHECK((*r)->ResolveSpec("nope").status().code() == Code::kNotFound);
  CHECK((*r)->ResolveSpec("nope@latest").status().code() == Code::kNotFound);
  CHECK((*r)->ResolveSpec("bad/name").status().code() == Code::kInvalid);
  std::string raw;
  CHECK((*r)->ReadChunk(Digest::Of("x"), &raw).code() == Code::kNotFound);
}

TEST_CASE("sizes parse with binary units", "[repository]") {
  CHECK(*ParseSize("128K") == 131072);
  CHECK(*ParseSize("128KiB") == 131072);
  CHECK(*ParseSize("1G") == 1073741824);
  CHECK(*ParseSize("1.5M") == 1572864);
  CHECK(*ParseSize("4096") == 4096);
  CHECK_FALSE(ParseSize("12Q").ok());
  CHECK_FALSE(ParseSize("").ok());
  CHECK_FALSE(ParseSize("-1K").ok());
  CHECK(FormatBytes(1536) == "1.5 KiB");
}

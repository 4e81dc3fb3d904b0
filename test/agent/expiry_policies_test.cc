// Live mount policies (agent/expiry_policies.h): deadlines persist across a restart, a
// default applies only to copies without a policy, and a damaged or hostile policy file is
// refused with its name.
#include <catch2/catch.hpp>

#include "agent/expiry_policies.h"
#include "test/test_util.h"

using namespace lm;
using lm::test::TempDir;

TEST_CASE("expiry policies: set, due, clear, and they survive a reopen") {
  TempDir dir;
  std::string file = dir.path() + "/expiry.json";
  BackupRef a{"web01", "20261127T000000Z"}, b{"db", "20261127T000001Z"};
  {
    auto p = ExpiryPolicies::Open(Env::Default(), file, 0);
    REQUIRE(p.ok());
    int changes = 0;
    (*p)->OnChange([&] { changes++; });
    REQUIRE((*p)->Set(a, 1000).ok());
    REQUIRE((*p)->Set(b, 2000).ok());
    CHECK(changes == 2);
    CHECK((*p)->Earliest() == 1000);
    CHECK((*p)->Due(999).empty());
    REQUIRE((*p)->Due(1500).size() == 1);
    CHECK((*p)->Due(1500)[0].Name() == a.Name());
    CHECK((*p)->Due(2000).size() == 2);
    // Without a default, a first use sets nothing.
    REQUIRE((*p)->FirstUse(BackupRef{"other", "20261127T000002Z"}, 500).ok());
    CHECK((*p)->All().size() == 2);
  }
  auto p = ExpiryPolicies::Open(Env::Default(), file, 3600);
  REQUIRE(p.ok());
  CHECK((*p)->DeadlineOf(a) == 1000);
  CHECK((*p)->DeadlineOf(b) == 2000);
  // The default gives a first-used copy now + default, and never replaces a policy.
  REQUIRE((*p)->FirstUse(a, 5000).ok());
  CHECK((*p)->DeadlineOf(a) == 1000);
  BackupRef c{"new", "20261127T000003Z"};
  REQUIRE((*p)->FirstUse(c, 5000).ok());
  CHECK((*p)->DeadlineOf(c) == 8600);
  REQUIRE((*p)->Clear(a).ok());
  REQUIRE((*p)->Clear(a).ok());  // none: still ok
  auto again = ExpiryPolicies::Open(Env::Default(), file, 0);
  REQUIRE(again.ok());
  CHECK_FALSE((*again)->DeadlineOf(a).has_value());
  CHECK((*again)->All().size() == 2);
}

TEST_CASE("expiry policies: a damaged or hostile file is refused, naming it") {
  TempDir dir;
  std::string file = dir.path() + "/expiry.json";
  for (const char* text : {
           "not json",
           "{\"version\": 2, \"copies\": {}}",
           "{\"version\": 1}",
           "{\"version\": 1, \"copies\": {\"a@1\": {\"vm\": \"a\", \"id\": \"1\"}}}",
           // A name that would climb out of the state directory.
           "{\"version\": 1, \"copies\": {\"../x@1\": {\"vm\": \"../x\", \"id\": \"1\", \"deadline\": 1}}}",
           // The key does not match the copy it describes.
           "{\"version\": 1, \"copies\": {\"a@2\": {\"vm\": \"a\", \"id\": \"1\", \"deadline\": 1}}}",
       }) {
    INFO(text);
    REQUIRE(Env::Default()->WriteFileAtomic(file, text).ok());
    auto p = ExpiryPolicies::Open(Env::Default(), file, 0);
    REQUIRE_FALSE(p.ok());
    CHECK(p.status().message().find(file) != std::string::npos);
  }
}

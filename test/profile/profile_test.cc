#include <catch2/catch.hpp>

#include "profile/profile.h"

using namespace lm;

TEST_CASE("a learned profile merges boots by earliest first touch and coalesces", "[profile]") {
  Trace a{"vm", "b1", 0, 4096, {{"disk", 0, 0}, {"disk", 1, 5}, {"disk", 9, 7}, {"vm.vmx", 0, 8}}};
  Trace b{"vm", "b2", 0, 4096, {{"vm.vmx", 0, 1}, {"disk", 0, 2}, {"disk", 5, 3}}};
  Profile p = LearnProfile("vm", {a, b});
  // Earliest times: disk0 0, vm.vmx0 1, disk5 3, disk1 5, disk9 7.
  REQUIRE(p.entries.size() == 5);
  CHECK(p.entries[0].file == "disk");
  CHECK(p.entries[0].ranges[0] == std::make_pair<uint64_t, uint64_t>(0, 4096));
  CHECK(p.entries[1].file == "vm.vmx");
  CHECK(p.entries[2].ranges[0].first == 5 * 4096);
  CHECK(p.entries[3].ranges[0].first == 1 * 4096);
  CHECK(p.entries[4].ranges[0].first == 9 * 4096);
  for (size_t i = 0; i < p.entries.size(); i++) CHECK(p.entries[i].order == i);

  Trace seq{"vm", "b3", 0, 4096, {{"disk", 3, 0}, {"disk", 4, 1}, {"disk", 5, 2}, {"x", 0, 3}}};
  Profile q = LearnProfile("vm", {seq});
  REQUIRE(q.entries.size() == 2);
  CHECK(q.entries[0].ranges[0] == std::make_pair<uint64_t, uint64_t>(3 * 4096, 3 * 4096));
  CHECK(q.Bytes() == 4 * 4096);
}

TEST_CASE("profiles and traces round-trip, bad ones are named", "[profile]") {
  Profile p;
  p.vm = "web";
  p.entries.push_back({"disk.vmdk", {{0, 512}, {1 << 20, 65536}}, "structural", 1, "grain directory"});
  p.entries.push_back({"web.vmx", {{0, 900}}, "learned", 0, ""});
  auto back = DecodeProfile(EncodeProfile(p), "p.json");
  REQUIRE(back.ok());
  REQUIRE(back->entries.size() == 2);
  CHECK(back->entries[0].file == "web.vmx");  // sorted by order
  CHECK(back->entries[1].ranges[1].second == 65536);
  CHECK(back->entries[1].note == "grain directory");
  CHECK(DecodeProfile("{", "p.json").status().message().find("p.json") == 0);
  CHECK_FALSE(DecodeProfile(R"({"format":"livemount-profile","version":1,"entries":[{"file":"../x","ranges":[]}]})", "p").ok());
  CHECK_FALSE(DecodeProfile(R"({"format":"livemount-profile","version":1,"entries":[{"file":"x","ranges":[[1]]}]})", "p").ok());
  CHECK_FALSE(DecodeProfile(R"({"format":"livemount-profile","version":1,"entries":[{"file":"x","ranges":[],"source":"magic"}]})", "p").ok());

  Trace t{"vm", "id", 5, 131072, {{"disk", 7, 12}}};
  auto tb = DecodeTrace(EncodeTrace(t), "t.json");
  REQUIRE(tb.ok());
  CHECK(tb->touches[0].chunk == 7);
  CHECK(tb->touches[0].ms == 12);
  CHECK_FALSE(DecodeTrace(R"({"format":"livemount-trace"})", "t").ok());
}

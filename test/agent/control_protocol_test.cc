// The control protocol (agent/control_protocol.h): every request and reply survives a
// round trip, an error keeps its code (also through a real control socket), and decoders
// refuse what they cannot trust, naming the field.
#include <catch2/catch.hpp>

#include "agent/control.h"
#include "agent/control_protocol.h"
#include "base/env.h"

using namespace lm;
using namespace lm::control;
using nlohmann::json;

namespace {

MountStats SampleStats(bool exported) {
  MountStats s;
  s.mountpoint = "/mnt/lm";
  s.repository = "/repo";
  s.state_dir = "/var/lib/livemount";
  s.pid = 4242;
  s.cache = {"/cache", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  s.repo = {12, 13, 14, 15};
  s.reads = {16, 17, 18, 19, 20};
  s.writes = {21, 22};
  s.overlays = {{"vm1@20261126T000000Z", 23, 24}, {"vm2@20261126T000001Z", 25, 26}};
  s.readahead = {27, 28};
  s.prestage = {29, 30, 1, 31, 33, 34, 2.5};
  s.namespace_nodes = 32;
  s.expiry = {{"vm1@20261126T000000Z", 1800000000}};
  if (exported) {
    s.export_ = ExportInfo{true, 99, "/mnt/lm", "/livemount", "0.0.0.0", 2049, 20048, {"10.0.0.0/24"}, true,
                           "/state/export/ganesha.conf", "/state/export/ganesha.log"};
  }
  return s;
}

template <typename T>
void RoundTrip(const T& reply) {
  json wire = Encode(reply);
  auto back = DecodeReply<T>(json::parse(wire.dump()));
  REQUIRE(back.ok());
  CHECK(Encode(*back) == wire);
}

}  // namespace

TEST_CASE("every control request round-trips", "[control]") {
  std::vector<Request> all = {StatsRequest{},
                              ExportRequest{"10.1.2.3", 12049, 30048, {"10.0.0.0/24", "host1"}, true},
                              UnexportRequest{},
                              PrestageRequest{"vm1@latest", "/p.json", true, 1800000000},
                              DiscardRequest{"vm1@20261126T000000Z"},
                              ExpireRequest{"vm1@latest", 28800}};
  for (const Request& r : all) {
    json wire = EncodeRequest(r);
    INFO(wire.dump());
    auto back = DecodeRequest(json::parse(wire.dump()));
    REQUIRE(back.ok());
    CHECK(back->index() == r.index());
    CHECK(EncodeRequest(*back) == wire);
  }
}

TEST_CASE("every control reply round-trips", "[control]") {
  RoundTrip(SampleStats(false));
  RoundTrip(SampleStats(true));
  RoundTrip(*SampleStats(true).export_);
  RoundTrip(UnexportReply{true});
  RoundTrip(PrestageReply{"vm1@x", "structural", 1, 2, 3, 4, 5, 6, 7, 1.5});
  RoundTrip(DiscardReply{"vm1@x"});
  RoundTrip(ExpireReply{"vm1@x", 1800000000});
  // The keys that users' scripts read (DESIGN.md, `stats --json`).
  json j = Encode(SampleStats(false));
  CHECK(j["cache"]["hits"] == 1);
  CHECK(j["cache"]["misses"] == 2);
  CHECK(j["repo"]["chunks_fetched"] == 12);
  CHECK(j["repo"]["bytes_fetched"] == 13);
  CHECK(j["prestage"]["chunks"] == 29);
  CHECK(j["prestage"]["remaining_bytes"] == 34);
  CHECK(j["prestage"]["seconds_left"] == 2.5);
  CHECK(j["export"].is_null());
}

TEST_CASE("an error reply keeps its code", "[control]") {
  for (int c = 1; c <= static_cast<int>(Code::kLastCode); c++) {
    Status s = Status::Of(static_cast<Code>(c), "what went wrong");
    json wire = json::parse(EncodeError(s).dump());
    CHECK(DecodeReply<MountStats>(wire).status().code() == s.code());
    CHECK(DecodeReply<DiscardReply>(wire).status().code() == s.code());
    CHECK(DecodeReply<PrestageReply>(wire).status().message().find("what went wrong") != std::string::npos);
  }
  // A code this version does not know is still an error, never success.
  CHECK(DecodeReply<UnexportReply>(json{{"error", "x"}, {"code", 999}}).status().code() == Code::kIoError);
  CHECK(!DecodeReply<UnexportReply>(json{{"error", 5}}).ok());
}

TEST_CASE("control decoders refuse what they cannot trust", "[control]") {
  json stats = Encode(SampleStats(true));
  SECTION("a missing field is named") {
    stats["cache"].erase("hits");
    auto r = DecodeReply<MountStats>(stats);
    CHECK(r.status().code() == Code::kCorrupt);
    CHECK(r.status().message().find("cache.hits") != std::string::npos);
  }
  SECTION("a negative count") {
    stats["repo"]["errors"] = -1;
    CHECK(DecodeReply<MountStats>(stats).status().message().find("repo.errors") != std::string::npos);
  }
  SECTION("a string where a number belongs") {
    stats["export"]["nfs_port"] = "2049";
    CHECK(DecodeReply<MountStats>(stats).status().message().find("export.nfs_port") != std::string::npos);
  }
  SECTION("a port out of range") {
    stats["export"]["nfs_port"] = 70000;
    CHECK(!DecodeReply<MountStats>(stats).ok());
  }
  SECTION("an overlay entry of the wrong shape") {
    stats["overlays"][1]["files"] = true;
    CHECK(DecodeReply<MountStats>(stats).status().message().find("overlays[].files") != std::string::npos);
  }
  SECTION("not an object") {
    CHECK(DecodeReply<MountStats>(json::array()).status().code() == Code::kCorrupt);
  }
  SECTION("object-store requests by kind") {
    stats["requests"] = json::parse(R"({"guest": {"requests": 3, "gets": 2, "bytes_in": 10, "bytes_out": 0,
        "retries": 1, "failures": 0, "p50_ms": 2.0, "p90_ms": 5.0, "p99_ms": 5.0}})");
    auto d = DecodeReply<MountStats>(stats);
    REQUIRE(d.ok());
    CHECK(d->requests.at("guest").retries == 1);
    CHECK(Encode(*d)["requests"]["guest"]["gets"] == 2);
    stats["requests"]["guest"]["gets"] = "many";
    CHECK(DecodeReply<MountStats>(stats).status().message().find("requests.guest.gets") != std::string::npos);
  }
  SECTION("requests") {
    CHECK(DecodeRequest(json{{"cmd", "format-disk"}}).status().code() == Code::kInvalid);
    CHECK(DecodeRequest(json{{"command", "stats"}}).status().code() == Code::kInvalid);
    auto r = DecodeRequest(json{{"cmd", "prestage"}, {"backup", "vm@x"}, {"profile", ""}, {"all", "yes"}, {"pin_until", 0}});
    CHECK(r.status().message().find("'all'") != std::string::npos);
    json pre = {{"cmd", "prestage"}, {"backup", "vm@x"}, {"profile", ""}, {"all", true}, {"pin_until", 0}};
    CHECK(std::get<PrestageRequest>(*DecodeRequest(pre)).threads == 8);  // an older client's request
    CHECK_FALSE(std::get<PrestageRequest>(*DecodeRequest(pre)).background);
    pre["threads"] = 16u;
    pre["background"] = true;
    CHECK(std::get<PrestageRequest>(*DecodeRequest(pre)).threads == 16);
    CHECK(std::get<PrestageRequest>(*DecodeRequest(pre)).background);
    PrestageRequest bg;
    bg.background = true;
    CHECK(std::get<PrestageRequest>(*DecodeRequest(EncodeRequest(bg))).background);
    pre["threads"] = 0u;
    CHECK(DecodeRequest(pre).status().message().find("threads must be 1-64") != std::string::npos);
    CHECK(!DecodeRequest(json{{"cmd", "discard"}}).ok());
    CHECK(!DecodeRequest(json::parse("[1]")).ok());
  }
}

TEST_CASE("a Busy from the agent arrives as Busy through the control socket", "[control]") {
  std::string name = "livemount-test-" + RandomHex(6);
  auto server = ControlServer::Start(name, [](const json& req) -> json {
    auto r = DecodeRequest(req);
    if (!r.ok()) return EncodeError(r.status());
    if (std::holds_alternative<DiscardRequest>(*r)) return EncodeError(Status::Busy("vm1@x has open files"));
    return Encode(DiscardReply{"unexpected"});
  });
  REQUIRE(server.ok());
  auto reply = ControlRequest(name, EncodeRequest(DiscardRequest{"vm1@x"}));
  REQUIRE(reply.ok());
  auto decoded = DecodeReply<DiscardReply>(*reply);
  CHECK(decoded.status().code() == Code::kBusy);
  CHECK(decoded.status().message().find("open files") != std::string::npos);
  auto unknown = ControlRequest(name, json{{"cmd", "nonsense"}});
  REQUIRE(unknown.ok());
  CHECK(DecodeReply<UnexportReply>(*unknown).status().code() == Code::kInvalid);
}

// The object-store client below the S3 backend: locations, credentials, the XML it reads,
// and, against a small fake server, signing, retries, priorities, the rate limit and
// conditional creates. The real engine (Ceph RGW) is in test/integration/s3_*.sh.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <future>
#include <map>

#include "store/backend/s3/http_client.h"
#include "store/backend/s3/s3_backend.h"
#include "store/backend/s3/s3_config.h"
#include "store/backend/s3/s3_xml.h"
#include "store/digest.h"
#include "test/store/fake_http_server.h"

using namespace lm;
using namespace lm::s3;
using lm::test::FakeHttpServer;
using lm::test::FakeReply;
using lm::test::FakeRequest;

namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

RetryOptions FastRetries(double give_up_s = 5) {
  RetryOptions r;
  r.base_s = 0.01;
  r.cap_s = 0.05;
  r.give_up_after_s = give_up_s;
  return r;
}

std::unique_ptr<S3Backend> BackendOn(const FakeHttpServer& server, RetryOptions retry = FastRetries()) {
  std::string loc = "s3:" + server.endpoint() + "/bucket/pre";
  Location where = ParseLocation(loc).value();
  S3BackendOptions o;
  o.retry = retry;
  o.http.stall_timeout_s = 2;
  return std::make_unique<S3Backend>(loc, where, Credentials{"AK", "SECRET", ""}, "us-east-1", o);
}

}  // namespace

TEST_CASE("S3 locations: restic's syntax, and one clear error otherwise", "[s3]") {
  auto l = ParseLocation("s3:http://127.0.0.1:7480/backups/site-a/vms");
  REQUIRE(l.ok());
  CHECK(l->endpoint == "http://127.0.0.1:7480");
  CHECK(l->host == "127.0.0.1:7480");
  CHECK(l->bucket == "backups");
  CHECK(l->prefix == "site-a/vms");
  auto aws = ParseLocation("s3:https://s3.eu-west-1.amazonaws.com/my-bucket/");
  REQUIRE(aws.ok());
  CHECK(aws->prefix.empty());
  for (const char* bad : {"s3:ftp://h/b", "s3:http://h", "s3:http://h/", "s3:http://h/UPPER",
                          "s3:http://h/b//x", "s3:http://h@evil/b", "s3:http://h/ab"}) {
    INFO(bad);
    auto r = ParseLocation(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("s3:http[s]://HOST") != std::string::npos);
  }
}

TEST_CASE("S3 credentials: environment first, then a profile of the credentials file", "[s3]") {
  auto env = LoadCredentials(FakeEnv({{"AWS_ACCESS_KEY_ID", "id"}, {"AWS_SECRET_ACCESS_KEY", "s"},
                                      {"AWS_SESSION_TOKEN", "tok"}}));
  REQUIRE(env.ok());
  CHECK(env->access_key == "id");
  CHECK(env->session_token == "tok");

  std::string file = "# comment\n[default]\naws_access_key_id = d\naws_secret_access_key = ds\n"
                     "[profile lab]\naws_access_key_id=l\naws_secret_access_key = ls \n";
  auto def = ParseCredentialsFile(file, "default", "creds");
  REQUIRE(def.ok());
  CHECK(def->access_key == "d");
  auto lab = ParseCredentialsFile(file, "lab", "creds");
  REQUIRE(lab.ok());
  CHECK(lab->secret_key == "ls");
  auto none = ParseCredentialsFile(file, "prod", "creds");
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().message() == "creds: no profile [prod]");
  CHECK_FALSE(ParseCredentialsFile("[x]\naws_access_key_id = a\n", "x", "c").ok());

  auto missing = LoadCredentials(FakeEnv({{"HOME", "/nonexistent"}}));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find("no S3 credentials") == 0);
  CHECK(LoadRegion(FakeEnv({})) == "us-east-1");
  CHECK(LoadRegion(FakeEnv({{"AWS_REGION", "eu-west-1"}})) == "eu-west-1");
}

TEST_CASE("S3 listings and errors are parsed without expanding entities", "[s3]") {
  std::string page =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
      "<IsTruncated>true</IsTruncated><NextContinuationToken>tok+/=</NextContinuationToken>"
      "<Contents><Key>pre/a&amp;b</Key><LastModified>2026-11-26T13:45:12.000Z</LastModified>"
      "<Size>42</Size></Contents><Contents><Key>pre/c</Key><Size>0</Size></Contents></ListBucketResult>";
  auto p = ParseListPage(page);
  REQUIRE(p.ok());
  CHECK(p->truncated);
  CHECK(p->next_token == "tok+/=");
  REQUIRE(p->objects.size() == 2);
  CHECK(p->objects[0].key == "pre/a&b");
  CHECK(p->objects[0].size == 42);
  CHECK(p->objects[0].last_modified == 1795700712);

  CHECK_FALSE(ParseListPage("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>").ok());
  CHECK_FALSE(ParseListPage("<Other/>").ok());
  CHECK_FALSE(ParseListPage("not xml").ok());
  CHECK_FALSE(ParseListPage("<ListBucketResult><Contents><Key>k</Key><Size>-1x</Size></Contents></ListBucketResult>").ok());
  // An entity bomb stays unexpanded: the key is not a billion characters long.
  std::string bomb =
      "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
      "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]>"
      "<ListBucketResult><Contents><Key>&d;</Key><Size>1</Size></Contents></ListBucketResult>";
  auto b = ParseListPage(bomb);
  if (b.ok() && !b->objects.empty()) CHECK(b->objects[0].key.size() <= 10000);

  auto e = ParseError("<Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>");
  CHECK(e.code == "NoSuchBucket");
  CHECK(e.message == "gone");
  CHECK(ParseError("").code.empty());
  CHECK(ParseHttpDate("Thu, 26 Nov 2026 13:45:12 GMT") == 1795700712);
  CHECK(ParseIsoTime("garbage") == -1);
}

TEST_CASE("S3 requests are signed and carry the body's SHA-256", "[s3]") {
  std::vector<FakeRequest> seen;
  std::mutex mu;
  FakeHttpServer server([&](const FakeRequest& r) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(r);
    return FakeReply{200, {{"ETag", "\"x\""}}, "", 0, false};
  });
  auto be = BackendOn(server);
  REQUIRE(be->Create("packs/ab/ab01.pack", "pack bytes").ok());
  REQUIRE(seen.size() == 1);
  const FakeRequest& put = seen[0];
  CHECK(put.method == "PUT");
  CHECK(put.target == "/bucket/pre/packs/ab/ab01.pack");
  CHECK(put.body == "pack bytes");
  CHECK(put.headers.at("if-none-match") == "*");
  CHECK(put.headers.at("x-amz-content-sha256") == Digest::Of(std::string("pack bytes")).Hex());
  CHECK(put.headers.at("authorization").find("AWS4-HMAC-SHA256 Credential=AK/") == 0);
  CHECK(put.headers.at("authorization").find("SignedHeaders=host;if-none-match;x-amz-content-sha256;x-amz-date") !=
        std::string::npos);
  CHECK_FALSE(put.headers.count("expect"));  // no 100-continue round trip
}

TEST_CASE("S3 transient failures are retried with backoff, others are not", "[s3]") {
  std::atomic<int> calls{0};
  FakeHttpServer server([&](const FakeRequest& r) {
    int n = calls++;
    if (n == 0) return FakeReply{503, {}, "<Error><Code>SlowDown</Code></Error>", 0, false};
    if (n == 1) return FakeReply{500, {}, "", 0, false};
    if (n == 2) return FakeReply{0, {}, "", 0, true};  // connection reset
    return FakeReply{206, {}, "0123", 0, false};
  });
  auto be = BackendOn(server);
  std::string out;
  REQUIRE(be->ReadRange("packs/ab/ab01.pack", 10, 4, &out).ok());
  CHECK(out == "0123");
  CHECK(calls == 4);
  auto stats = be->Requests();
  REQUIRE(stats);
  // libcurl itself resends once on a kept-alive connection the server reset, so the
  // reset may not count as one of ours.
  CHECK(stats->kinds[int(IoKind::kOther)].retries >= 2);
  CHECK(stats->kinds[int(IoKind::kOther)].gets == 1);

  calls = 0;
  FakeHttpServer denied([&](const FakeRequest&) {
    calls++;
    return FakeReply{403, {}, "<Error><Code>InvalidAccessKeyId</Code></Error>", 0, false};
  });
  auto be2 = BackendOn(denied);
  auto r = be2->ReadAll("config");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kDenied);
  CHECK(r.status().message().find("InvalidAccessKeyId") != std::string::npos);
  CHECK(calls == 1);
}

TEST_CASE("S3 retries end after their time budget with the last error", "[s3]") {
  FakeHttpServer server([&](const FakeRequest&) { return FakeReply{503, {}, "", 0, false}; });
  auto be = BackendOn(server, FastRetries(0.3));
  auto start = std::chrono::steady_clock::now();
  auto r = be->ReadAll("config");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kIoError);
  CHECK(r.status().message().find("HTTP 503") != std::string::npos);
  CHECK(s >= 0.2);
  CHECK(server.requests() >= 3);
  CHECK(be->Requests()->kinds[int(IoKind::kOther)].failures == 1);
}

TEST_CASE("S3 ranged reads: a short or out-of-range answer is Corrupt, never short data", "[s3]") {
  FakeHttpServer server([&](const FakeRequest& r) {
    if (r.target.find("short") != std::string::npos) return FakeReply{206, {}, "01", 0, false};
    if (r.target.find("past") != std::string::npos) return FakeReply{416, {}, "", 0, false};
    if (r.target.find("whole") != std::string::npos) return FakeReply{200, {}, "0123456789", 0, false};
    return FakeReply{404, {}, "<Error><Code>NoSuchKey</Code></Error>", 0, false};
  });
  auto be = BackendOn(server);
  std::string out;
  CHECK(be->ReadRange("short", 0, 4, &out).code() == Code::kCorrupt);
  CHECK(be->ReadRange("past", 100, 4, &out).code() == Code::kCorrupt);
  CHECK(be->ReadRange("missing", 0, 4, &out).code() == Code::kNotFound);
  REQUIRE(be->ReadRange("whole", 3, 4, &out).ok());  // a server that ignores Range
  CHECK(out == "3456");
}

TEST_CASE("S3 creates never replace, a retried create that had succeeded is recognized", "[s3]") {
  std::map<std::string, std::string> objects;
  std::mutex mu;
  bool drop_first_reply = true;
  FakeHttpServer server([&](const FakeRequest& r) {
    std::lock_guard<std::mutex> lock(mu);
    if (r.method == "PUT") {
      if (objects.count(r.target)) return FakeReply{412, {}, "<Error><Code>PreconditionFailed</Code></Error>", 0, false};
      objects[r.target] = r.body;
      if (drop_first_reply) {  // stored, but the reply is lost: the client retries
        drop_first_reply = false;
        return FakeReply{0, {}, "", 0, true};
      }
      return FakeReply{200, {}, "", 0, false};
    }
    if (r.method == "HEAD" && objects.count(r.target)) {
      // Single-part ETag: the MD5 of the bytes.
      const std::string& b = objects[r.target];
      std::string etag = b == "ours" ? "\"abdc793c700a0f9110566c092398985f\"" : "\"0\"";
      return FakeReply{200, {{"ETag", etag}, {"Content-Length", std::to_string(b.size())}}, "", 0, false};
    }
    return FakeReply{404, {}, "", 0, false};
  });
  auto be = BackendOn(server);
  // MD5("ours") as the fake's ETag above.
  REQUIRE(be->Create("backups/vm/1/backup.json", "ours").ok());
  auto again = be->Create("backups/vm/1/backup.json", "theirs");
  CHECK(again.code() == Code::kExists);
  CHECK(objects["/bucket/pre/backups/vm/1/backup.json"] == "ours");
}

TEST_CASE("HTTP client: a guest request waiting for a slot starts before background ones", "[s3]") {
  std::vector<std::string> order;
  std::mutex mu;
  FakeHttpServer server([&](const FakeRequest& r) {
    {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(r.target);
    }
    return FakeReply{200, {}, "", r.target == "/block" ? 300 : 0, false};
  });
  HttpOptions o;
  o.max_in_flight = 1;
  HttpClient http(o);
  auto req = [&](const std::string& path, int prio) { return HttpRequest{"GET", server.endpoint() + path, {}, "", prio}; };
  auto blocker = http.Submit(req("/block", 3));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the blocker holds the one slot
  auto h1 = http.Submit(req("/hydrate1", int(IoKind::kHydrate)));
  auto h2 = http.Submit(req("/hydrate2", int(IoKind::kHydrate)));
  auto g = http.Submit(req("/guest", int(IoKind::kGuest)));
  auto p = http.Submit(req("/prestage", int(IoKind::kPrestage)));
  for (auto* f : {&blocker, &h1, &h2, &g, &p}) CHECK(f->get().status == 200);
  REQUIRE(order.size() == 5);
  CHECK(order == std::vector<std::string>{"/block", "/guest", "/prestage", "/hydrate1", "/hydrate2"});
}

TEST_CASE("HTTP client: the request rate limit holds", "[s3]") {
  FakeHttpServer server([&](const FakeRequest&) { return FakeReply{200, {}, "", 0, false}; });
  HttpOptions o;
  o.max_requests_per_second = 20;
  HttpClient http(o);
  auto start = std::chrono::steady_clock::now();
  std::vector<std::future<HttpResponse>> all;
  for (int i = 0; i < 10; i++) all.push_back(http.Submit(HttpRequest{"GET", server.endpoint() + "/x", {}, "", 3}));
  for (auto& f : all) CHECK(f.get().status == 200);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(s >= 0.35);  // 10 requests at 20/s with a burst of 2: at least 8/20 s
}

namespace {
// Just enough of S3 for locks: create, read, delete, list with LastModified; and an outage.
struct FakeStore {
  std::mutex mu;
  std::map<std::string, std::string> objects;  // target -> body
  std::atomic<bool> down{false};
  FakeReply Handle(const FakeRequest& r) {
    if (down) return FakeReply{503, {}, "<Error><Code>ServiceUnavailable</Code></Error>", 0, false};
    std::lock_guard<std::mutex> lock(mu);
    std::string path = r.target.substr(0, r.target.find('?'));
    if (r.method == "PUT") {
      if (objects.count(path)) return FakeReply{412, {}, "<Error><Code>PreconditionFailed</Code></Error>", 0, false};
      objects[path] = r.body;
      return FakeReply{200, {}, "", 0, false};
    }
    if (r.method == "DELETE") {
      objects.erase(path);
      return FakeReply{204, {}, "", 0, false};
    }
    if (r.method == "GET" && r.target.find("list-type=2") != std::string::npos) {
      std::string xml = "<ListBucketResult><IsTruncated>false</IsTruncated>";
      char now[32];
      time_t t = time(nullptr);
      std::strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%S.000Z", gmtime(&t));
      for (auto& [k, v] : objects) {
        xml += "<Contents><Key>" + k.substr(std::strlen("/bucket/")) + "</Key><Size>" + std::to_string(v.size()) +
               "</Size><LastModified>" + now + "</LastModified></Contents>";
      }
      return FakeReply{200, {}, xml + "</ListBucketResult>", 0, false};
    }
    if (r.method == "GET" && objects.count(path)) return FakeReply{200, {}, objects[path], 0, false};
    return FakeReply{404, {}, "<Error><Code>NoSuchKey</Code></Error>", 0, false};
  }
};
}  // namespace

TEST_CASE("S3 lock: one not refreshed for long counts as lost, for good", "[s3]") {
  FakeStore store;
  FakeHttpServer server([&](const FakeRequest& r) { return store.Handle(r); });
  std::string loc = "s3:" + server.endpoint() + "/bucket/pre";
  S3BackendOptions o;
  o.retry = FastRetries(0.3);
  o.http.stall_timeout_s = 2;
  o.lock.refresh_s = 1;
  o.lock.stale_s = 3;  // lost after 2 s without a refresh
  S3Backend be(loc, ParseLocation(loc).value(), Credentials{"AK", "SECRET", ""}, "us-east-1", o);
  auto lock = be.Lock(LockMode::kShared);
  REQUIRE(lock.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  CHECK((*lock)->Check().ok());  // refreshed meanwhile
  store.down = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  Status s = (*lock)->Check();
  CHECK(s.code() == Code::kIoError);
  CHECK(s.message().find("without a refresh") != std::string::npos);
  store.down = false;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // refreshed again, but
  CHECK_FALSE((*lock)->Check().ok());                             // someone may have acted meanwhile
}

TEST_CASE("S3 limits from the environment: in flight, rate, retry time, stall timeout, bad values named", "[s3]") {
  S3BackendOptions o;
  REQUIRE(ApplyEnvironmentTuning(FakeEnv({}), &o).ok());
  CHECK(o.http.max_in_flight == 16);
  CHECK(o.http.max_requests_per_second == 0);
  CHECK(o.retry.give_up_after_s == 180);
  CHECK(o.http.stall_timeout_s == 30);
  REQUIRE(ApplyEnvironmentTuning(FakeEnv({{"LIVEMOUNT_S3_CONNECTIONS", "4"},
                                          {"LIVEMOUNT_S3_MAX_RATE", "50.5"},
                                          {"LIVEMOUNT_S3_RETRY_FOR", "600"},
                                          {"LIVEMOUNT_S3_STALL_TIMEOUT", "5"}}),
                                 &o)
              .ok());
  CHECK(o.http.max_in_flight == 4);
  CHECK(o.http.max_requests_per_second == 50.5);
  CHECK(o.retry.give_up_after_s == 600);
  CHECK(o.http.stall_timeout_s == 5);
  for (auto [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"LIVEMOUNT_S3_CONNECTIONS", "0"}, {"LIVEMOUNT_S3_CONNECTIONS", "2.5"},
           {"LIVEMOUNT_S3_CONNECTIONS", "many"}, {"LIVEMOUNT_S3_MAX_RATE", "-1"},
           {"LIVEMOUNT_S3_RETRY_FOR", "1e9"}, {"LIVEMOUNT_S3_RETRY_FOR", "10s"},
           {"LIVEMOUNT_S3_STALL_TIMEOUT", "0"}, {"LIVEMOUNT_S3_STALL_TIMEOUT", "1.5"}}) {
    S3BackendOptions bad;
    Status s = ApplyEnvironmentTuning(FakeEnv({{name, value}}), &bad);
    CHECK(s.code() == Code::kInvalid);
    CHECK(s.message().rfind(name + ":", 0) == 0);
  }
}

// The metrics exposition (agent/metrics.h) and its HTTP endpoint (agent/metrics_server.h):
// each family is declared once before its samples, histograms are cumulative and end in
// +Inf = count, label values are escaped, and the server answers GET /metrics only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <algorithm>
#include <set>
#include <sstream>

#include "agent/metrics.h"
#include "agent/metrics_server.h"

using namespace lm;

namespace {

// The lines of `text` that start with `prefix`.
std::vector<std::string> Lines(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  }
  return out;
}

// One HTTP/1.0 exchange with 127.0.0.1:port; returns the whole response.
std::string Http(uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
  ::close(fd);
  return out;
}

}  // namespace

TEST_CASE("metrics: every family is declared once, before its samples") {
  MetricsSnapshot m;
  m.cache_hits = 7;
  m.fetched_chunks[static_cast<int>(IoKind::kPrestage)] = 3;
  m.copies.push_back({"web01", "20261127T000000Z", 10, 4096, 2, 8192, 1, 12288, 3, 100, 200, 1800000000});
  m.copies.push_back({"db", "20261126T000000Z"});
  std::string text = RenderMetrics(m);
  std::set<std::string> declared;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      CHECK(declared.insert(name).second);  // no family twice
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    std::string name = line.substr(0, line.find_first_of("{ "));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string s = suffix;
      if (!declared.count(name) && name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0)
        name = name.substr(0, name.size() - s.size());
    }
    INFO(line);
    CHECK(declared.count(name) == 1);
  }
  CHECK(Lines(text, "livemount_cache_hits_total ") == std::vector<std::string>{"livemount_cache_hits_total 7"});
  CHECK(Lines(text, "livemount_repository_fetched_chunks_total{kind=\"prestage\"}") ==
        std::vector<std::string>{"livemount_repository_fetched_chunks_total{kind=\"prestage\"} 3"});
  CHECK(Lines(text, "livemount_overlay_bytes{") ==
        std::vector<std::string>{"livemount_overlay_bytes{vm=\"web01\",backup=\"20261127T000000Z\"} 12288",
                                 "livemount_overlay_bytes{vm=\"db\",backup=\"20261126T000000Z\"} 0"});
  CHECK(Lines(text, "livemount_expiry_timestamp_seconds{vm=\"web01\"") ==
        std::vector<std::string>{"livemount_expiry_timestamp_seconds{vm=\"web01\",backup=\"20261127T000000Z\"} 1800000000"});
  // Counters end in _total; sizes in _bytes.
  for (const std::string& t : Lines(text, "# TYPE ")) {
    if (t.find(" counter") != std::string::npos) CHECK(t.find("_total counter") != std::string::npos);
  }
}

TEST_CASE("metrics: histograms are cumulative and end in +Inf = count") {
  LatencyHistogram h;
  h.Observe(std::chrono::microseconds(30));    // first bucket (50 µs)
  h.Observe(std::chrono::microseconds(30));
  h.Observe(std::chrono::milliseconds(3));     // le 0.005
  h.Observe(std::chrono::seconds(30));         // past the last bound: +Inf only
  MetricsSnapshot m;
  m.guest_read_latency = h.Read();
  std::string text = RenderMetrics(m);
  auto buckets = Lines(text, "livemount_guest_read_duration_seconds_bucket");
  REQUIRE(buckets.size() == LatencyHistogram::kBuckets);
  CHECK(buckets.front() == "livemount_guest_read_duration_seconds_bucket{le=\"5e-05\"} 2");
  CHECK(std::find(buckets.begin(), buckets.end(), "livemount_guest_read_duration_seconds_bucket{le=\"0.0025\"} 2") !=
        buckets.end());
  CHECK(std::find(buckets.begin(), buckets.end(), "livemount_guest_read_duration_seconds_bucket{le=\"0.005\"} 3") !=
        buckets.end());
  CHECK(buckets[buckets.size() - 2] == "livemount_guest_read_duration_seconds_bucket{le=\"10\"} 3");
  CHECK(buckets.back() == "livemount_guest_read_duration_seconds_bucket{le=\"+Inf\"} 4");
  CHECK(Lines(text, "livemount_guest_read_duration_seconds_count") ==
        std::vector<std::string>{"livemount_guest_read_duration_seconds_count 4"});
  auto sum = Lines(text, "livemount_guest_read_duration_seconds_sum ");
  REQUIRE(sum.size() == 1);
  CHECK(std::stod(sum[0].substr(sum[0].find(' ') + 1)) == Approx(30.00306));
}

TEST_CASE("metrics: label values are escaped") {
  CHECK(EscapeLabelValue("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  CHECK(EscapeLabelValue("web01") == "web01");
}

TEST_CASE("metrics server: GET /metrics, and nothing else") {
  int renders = 0;
  auto server = MetricsServer::Start("127.0.0.1:0", [&] {
    renders++;
    return std::string("livemount_up 1\n");
  });
  REQUIRE(server.ok());
  uint16_t port = (*server)->port();
  REQUIRE(port != 0);
  std::string ok = Http(port, "GET /metrics HTTP/1.0\r\n\r\n");
  CHECK(ok.rfind("HTTP/1.", 0) == 0);
  CHECK(ok.find(" 200 ") == 8);
  CHECK(ok.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  CHECK(ok.substr(ok.size() - 15) == "livemount_up 1\n");
  CHECK(Http(port, "GET /other HTTP/1.0\r\n\r\n").find(" 404 ") == 8);
  CHECK(Http(port, "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc").find(" 405 ") == 8);
  CHECK(renders == 1);
  // A second server on the same port is refused with the address in the message.
  auto again = MetricsServer::Start("127.0.0.1:" + std::to_string(port), [] { return std::string(); });
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().message().find("127.0.0.1:" + std::to_string(port)) != std::string::npos);
}

TEST_CASE("metrics server: listen addresses") {
  CHECK(ParseListenAddress("127.0.0.1:9464").ok());
  CHECK(ParseListenAddress("[::1]:9464").ok());
  CHECK(ParseListenAddress("[::1]:9464")->ipv6);
  CHECK(ParseListenAddress(":9464").ok());
  CHECK_FALSE(ParseListenAddress("9464").ok());
  CHECK_FALSE(ParseListenAddress("127.0.0.1:99999").ok());
  CHECK_FALSE(ParseListenAddress("127.0.0.1:x").ok());
  CHECK(ParseListenAddress("127.0.0.1:").status().message().find("port") != std::string::npos);
}

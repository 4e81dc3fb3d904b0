#include "store/backend/s3/s3_client.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <ctime>
#include <random>
#include <thread>

#include "base/json_bytes.h"
#include "store/backend/s3/s3_xml.h"
#include "store/digest.h"

namespace lm::s3 {

namespace {

std::string AmzDate(time_t t) {
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

double Jitter(double max_s) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0, max_s)(rng);
}

const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

}  // namespace

Status RetryOptions::validate() const {
  if (base_s <= 0 || cap_s < base_s || give_up_after_s < 0) return Status::Invalid("s3: bad retry options");
  return Status::Ok();
}

bool IsTransient(const HttpResponse& resp) {
  if (resp.transport_error != 0) return true;  // refused, reset, timed out, stalled
  long s = resp.status;
  if (s == 500 || s == 502 || s == 503 || s == 504 || s == 429) return true;
  if (s == 400) {
    std::string code = ParseError(resp.body).code;
    return code == "RequestTimeout" || code == "SlowDown";
  }
  return false;
}

S3Client::S3Client(Location location, Credentials credentials, std::string region, HttpOptions http,
                   RetryOptions retry)
    : location_(std::move(location)),
      credentials_(std::move(credentials)),
      region_(std::move(region)),
      retry_(retry),
      http_(http) {
  const char* t = std::getenv("LIVEMOUNT_S3_TRACE");
  trace_ = t && *t && std::string(t) != "0";
}

std::string S3Client::Url(const std::string& key) const {
  return "s3:" + location_.endpoint + "/" + location_.bucket + (key.empty() ? "" : "/" + key);
}

int64_t S3Client::ServerNow() const { return int64_t(std::time(nullptr)) + server_offset_.load(); }

HttpRequest S3Client::Sign(const S3Request& r, int priority) const {
  SignedRequest s;
  s.method = r.method;
  s.path = "/" + location_.bucket + (r.key.empty() ? "" : "/" + r.key);
  s.query = r.query;
  std::string amz_date = AmzDate(std::time(nullptr) + server_offset_.load());
  s.payload_sha256 = r.body.empty() ? kEmptySha256 : Digest::Of(r.body).Hex();
  s.headers = r.headers;
  s.headers.push_back({"Host", location_.host});
  s.headers.push_back({"X-Amz-Date", amz_date});
  s.headers.push_back({"X-Amz-Content-Sha256", s.payload_sha256});
  if (!credentials_.session_token.empty()) s.headers.push_back({"X-Amz-Security-Token", credentials_.session_token});
  HttpRequest h;
  h.method = r.method;
  h.priority = priority;
  h.url = location_.endpoint + UriEncode(s.path, true);
  std::string query;
  for (auto& [k, v] : r.query) {
    query += (query.empty() ? "?" : "&") + UriEncode(k, false) + "=" + UriEncode(v, false);
  }
  h.url += query;
  for (auto& [k, v] : s.headers) h.headers.push_back(k + ": " + v);
  h.headers.push_back("Authorization: " + Authorization(s, credentials_, region_, "s3", amz_date));
  if (r.method == "PUT" || r.method == "POST") h.headers.push_back("Content-Type: application/octet-stream");
  h.body = r.body;
  return h;
}

void S3Client::Count(IoKind kind, const S3Request& r, const HttpResponse& resp, int retries, bool failed) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  KindStats& k = stats_.kinds[int(kind)];
  k.requests++;
  if (r.method == "GET") k.gets++;
  k.bytes_in += resp.body.size();
  k.bytes_out += r.body.size();
  k.retries += uint64_t(retries);
  if (failed) k.failures++;
  k.AddLatency(resp.seconds * 1000);
}

RequestStats S3Client::Stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

Result<HttpResponse> S3Client::Send(const S3Request& r) {
  IoKind kind = CurrentIoKind();
  auto start = std::chrono::steady_clock::now();
  double backoff = retry_.base_s;
  for (int attempt = 0;; attempt++) {
    HttpResponse resp = http_.Submit(Sign(r, int(kind))).get();
    if (auto it = resp.headers.find("date"); it != resp.headers.end()) {
      int64_t server = ParseHttpDate(it->second);
      if (server > 0) server_offset_ = server - int64_t(std::time(nullptr));
    }
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    resp.attempts = attempt + 1;
    if (trace_) {
      std::fprintf(stderr, "s3: %s %s%s -> %ld%s %.1f ms (queued %.1f ms) %zu B\n", r.method.c_str(),
                   r.key.c_str(), r.headers.empty() ? "" : (" " + r.headers[0].second).c_str(), resp.status,
                   resp.transport_error ? (" " + resp.transport_message).c_str() : "", resp.seconds * 1000,
                   resp.queued_seconds * 1000, resp.body.size());
    }
    bool transient = IsTransient(resp);
    if (!transient || elapsed + backoff > retry_.give_up_after_s) {
      Count(kind, r, resp, attempt, transient);
      if (resp.transport_error != 0) {
        return Status::IoError(Url(r.key) + ": " + resp.transport_message + " (after " +
                               std::to_string(attempt + 1) + " attempts in " + std::to_string(int(elapsed)) + " s)");
      }
      return resp;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(Jitter(backoff)));
    backoff = std::min(retry_.cap_s, backoff * 2);
  }
}

Status S3Client::ErrorFor(const HttpResponse& resp, const std::string& what) const {
  S3ErrorDoc e = ParseError(resp.body);
  std::string detail = "HTTP " + std::to_string(resp.status) + (e.code.empty() ? "" : " " + e.code) +
                       (e.message.empty() ? "" : ": " + e.message);
  if (resp.status == 404 && e.code == "NoSuchBucket") {  // a wrong location, not a missing object
    return Status::Invalid(what + ": the bucket '" + location_.bucket + "' does not exist at " + location_.endpoint);
  }
  if (resp.status == 404) return Status::NotFound(what + ": no such object");
  if (resp.status == 403 || resp.status == 401) {
    return Status::Denied(what + ": access denied by the object store (" + detail +
                          "); check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }
  if (resp.status == 412) return Status::Exists(what + ": already exists");
  if (resp.status == 416) return Status::Corrupt(what + ": truncated (range past the end)");
  return Status::IoError(what + ": " + detail);
}

}  // namespace lm::s3

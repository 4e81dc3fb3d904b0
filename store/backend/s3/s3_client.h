// S3Client: signed S3 requests with retries, on the HttpClient.
//
// Every attempt is signed afresh (SigV4 signatures carry the time). Transient failures are
// retried with exponential backoff and full jitter (AWS's advice): connection errors,
// resets, stalls, HTTP 500/502/503/504, 429 and S3's "SlowDown" and "RequestTimeout".
// Retries go on until `give_up_after_s` has passed, long enough for a gateway restart or a
// stall of a minute; a guest then waits, it does not get an error. Anything else (404,
// 403, 412) is the caller's to interpret.
//
// Counted per kind of I/O (guest, prestage, hydrate, other): requests, GETs, bytes each
// way, retries, failures and a latency histogram (for percentiles).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "store/backend/io_kind.h"
#include "store/backend/request_stats.h"
#include "store/backend/s3/http_client.h"
#include "store/backend/s3/s3_config.h"

namespace lm::s3 {

struct RetryOptions {
  double base_s = 0.1;            // first backoff (before jitter)
  double cap_s = 5;               // longest single backoff
  double give_up_after_s = 180;   // total time an operation keeps retrying
  Status validate() const;
};

struct S3Request {
  std::string method;
  std::string key;  // object key in the bucket (prefix included); "" for the bucket itself
  std::vector<std::pair<std::string, std::string>> query;    // decoded
  std::vector<std::pair<std::string, std::string>> headers;  // extra, signed
  std::string body;
};

class S3Client {
 public:
  S3Client(Location location, Credentials credentials, std::string region, HttpOptions http,
           RetryOptions retry);

  // Sends `r` as CurrentIoKind(), retrying transient failures. Returns the last response
  // with any HTTP status; an error only when no status ever arrived (the store unreachable).
  Result<HttpResponse> Send(const S3Request& r);

  // The status for a response that is not what the caller wanted, named after `what`:
  // NotFound, Denied (credentials, signature, access), Exists (412), IoError otherwise.
  Status ErrorFor(const HttpResponse& resp, const std::string& what) const;

  const Location& location() const { return location_; }
  std::string Url(const std::string& key) const;  // for messages: "s3:http://h/bucket/key"
  RequestStats Stats() const;
  // The server's clock (its last Date header) minus ours, in seconds.
  int64_t ServerClockOffset() const { return server_offset_.load(); }
  int64_t ServerNow() const;

 private:
  HttpRequest Sign(const S3Request& r, int priority) const;
  void Count(IoKind kind, const S3Request& r, const HttpResponse& resp, int retries, bool failed);

  Location location_;
  Credentials credentials_;
  std::string region_;
  RetryOptions retry_;
  HttpClient http_;
  mutable std::mutex stats_mu_;
  RequestStats stats_;
  std::atomic<int64_t> server_offset_{0};
  bool trace_ = false;  // LIVEMOUNT_S3_TRACE=1: one line per request on stderr (debugging)
};

// True for a response worth retrying (see above).
bool IsTransient(const HttpResponse& resp);

}  // namespace lm::s3

// HttpClient: every request the object-store backend makes goes through one libcurl multi
// handle driven by one thread, so that
//  - connections are kept alive and reused (the multi handle's connection pool);
//  - at most `max_in_flight` requests are on the wire at once, and at most
//    `max_requests_per_second` start per second (providers throttle: 503 SlowDown);
//  - waiting requests start in priority order (a guest's read before the pre-stager's,
//    before hydration), FIFO within one priority, instead of one shared pool where a
//    pre-stage of 10,000 chunks would queue a guest behind it.
// Callers block on a future; bodies are held in memory (objects are at most a pack).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"

namespace lm::s3 {

struct HttpRequest {
  std::string method;                // GET, HEAD, PUT, POST, DELETE
  std::string url;                   // already percent-encoded
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // sent for PUT and POST
  int priority = 3;                  // lower starts first
};

struct HttpResponse {
  int transport_error = 0;    // CURLcode; 0 when an HTTP status arrived
  std::string transport_message;
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  double seconds = 0;         // from start on the wire to the last byte
  double queued_seconds = 0;  // waiting for a slot or the rate limit
  int attempts = 1;           // how many times it was sent (set by S3Client's retries)
};

struct HttpOptions {
  unsigned max_in_flight = 16;
  double max_requests_per_second = 0;  // 0: no limit
  long connect_timeout_ms = 10000;
  // A transfer that moves nothing for this long is abandoned (a stalled server); whole
  // transfers have no time limit, as a 32 MiB pack on a slow link takes long.
  long stall_timeout_s = 30;
  Status validate() const;
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  std::future<HttpResponse> Submit(HttpRequest request);
  // Requests waiting for a slot (not yet on the wire).
  size_t Queued() const;
  const HttpOptions& options() const { return options_; }

 private:
  struct Pending;
  struct Transfer;
  struct Order {
    bool operator()(const std::shared_ptr<Pending>& a, const std::shared_ptr<Pending>& b) const;
  };
  void Loop();
  void StartTransfer(std::shared_ptr<Pending> p);
  void FinishTransfer(void* easy, int result);
  bool RateAllows(double now);

  HttpOptions options_;
  void* multi_ = nullptr;  // CURLM*
  std::thread thread_;
  mutable std::mutex mu_;
  bool stopping_ = false;
  uint64_t next_seq_ = 0;
  std::priority_queue<std::shared_ptr<Pending>, std::vector<std::shared_ptr<Pending>>, Order> queue_;
  std::map<void*, std::unique_ptr<Transfer>> running_;  // by CURL* (loop thread only)
  std::vector<void*> idle_handles_;                      // reused CURL* (loop thread only)
  double tokens_ = 0, tokens_at_ = 0;                    // rate limiter (loop thread only)
};

}  // namespace lm::s3

#include "store/backend/s3/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace lm::s3 {

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();  // a new response (after 100 Continue or a redirect)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.remove_suffix(1);
  (*headers)[name] = std::string(value);
  return size * n;
}

}  // namespace

struct HttpClient::Pending {
  HttpRequest request;
  std::promise<HttpResponse> promise;
  uint64_t seq = 0;
  double queued_at = 0;
};

struct HttpClient::Transfer {
  std::shared_ptr<Pending> pending;
  HttpResponse response;
  curl_slist* headers = nullptr;
  double started = 0;
  ~Transfer() { curl_slist_free_all(headers); }
};

bool HttpClient::Order::operator()(const std::shared_ptr<Pending>& a, const std::shared_ptr<Pending>& b) const {
  if (a->request.priority != b->request.priority) return a->request.priority > b->request.priority;
  return a->seq > b->seq;
}

Status HttpOptions::validate() const {
  if (max_in_flight < 1 || max_in_flight > 1024) return Status::Invalid("http: max in flight must be 1..1024");
  if (max_requests_per_second < 0) return Status::Invalid("http: a negative request rate");
  if (connect_timeout_ms < 1 || stall_timeout_s < 1) return Status::Invalid("http: timeouts must be positive");
  return Status::Ok();
}

HttpClient::HttpClient(HttpOptions options) : options_(options) {
  GlobalInit();
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, long(options_.max_in_flight));
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, long(options_.max_in_flight));
  tokens_at_ = Now();
  tokens_ = 1;
  thread_ = std::thread([this] { Loop(); });
}

HttpClient::~HttpClient() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  curl_multi_wakeup(multi_);
  thread_.join();
  for (void* e : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(e));
  curl_multi_cleanup(multi_);
}

std::future<HttpResponse> HttpClient::Submit(HttpRequest request) {
  auto p = std::make_shared<Pending>();
  p->request = std::move(request);
  p->queued_at = Now();
  std::future<HttpResponse> f = p->promise.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      HttpResponse r;
      r.transport_error = CURLE_ABORTED_BY_CALLBACK;
      r.transport_message = "the HTTP client is shutting down";
      p->promise.set_value(std::move(r));
      return f;
    }
    p->seq = next_seq_++;
    queue_.push(std::move(p));
  }
  curl_multi_wakeup(multi_);
  return f;
}

size_t HttpClient::Queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

bool HttpClient::RateAllows(double now) {
  double rate = options_.max_requests_per_second;
  if (rate <= 0) return true;
  double burst = std::max(1.0, rate / 10);  // at most a tenth of a second's worth at once
  tokens_ = std::min(burst, tokens_ + (now - tokens_at_) * rate);
  tokens_at_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

void HttpClient::StartTransfer(std::shared_ptr<Pending> p) {
  CURL* e;
  if (!idle_handles_.empty()) {
    e = static_cast<CURL*>(idle_handles_.back());
    idle_handles_.pop_back();
    curl_easy_reset(e);
  } else {
    e = curl_easy_init();
  }
  auto t = std::make_unique<Transfer>();
  const HttpRequest& rq = p->request;
  t->response.queued_seconds = Now() - p->queued_at;
  t->started = Now();
  t->pending = std::move(p);
  for (const auto& h : rq.headers) t->headers = curl_slist_append(t->headers, h.c_str());
  // libcurl would add these on its own: a form content type for a body, and a 100-continue
  // round trip before every large PUT.
  t->headers = curl_slist_append(t->headers, "Expect:");
  curl_easy_setopt(e, CURLOPT_URL, rq.url.c_str());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, options_.connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, options_.stall_timeout_s);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t->response.body);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t->response.headers);
  if (rq.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (rq.method == "PUT" || rq.method == "POST") {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq.body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(rq.body.size()));
    if (rq.method == "PUT") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
  } else if (rq.method != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq.method.c_str());
  }
  curl_easy_setopt(e, CURLOPT_PRIVATE, e);
  curl_multi_add_handle(multi_, e);
  running_[e] = std::move(t);
}

void HttpClient::FinishTransfer(void* easy, int result) {
  CURL* e = static_cast<CURL*>(easy);
  auto it = running_.find(e);
  if (it == running_.end()) return;
  std::unique_ptr<Transfer> t = std::move(it->second);
  running_.erase(it);
  curl_multi_remove_handle(multi_, e);
  t->response.seconds = Now() - t->started;
  if (result != CURLE_OK) {
    t->response.transport_error = result;
    t->response.transport_message = curl_easy_strerror(static_cast<CURLcode>(result));
  } else {
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &t->response.status);
  }
  idle_handles_.push_back(e);
  t->pending->promise.set_value(std::move(t->response));
}

void HttpClient::Loop() {
  for (;;) {
    double wait_ms = 1000;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_ && queue_.empty() && running_.empty()) break;
      while (!queue_.empty() && running_.size() < options_.max_in_flight) {
        if (!RateAllows(Now())) {
          wait_ms = std::max(1.0, 1000.0 / options_.max_requests_per_second);
          break;
        }
        auto p = queue_.top();
        queue_.pop();
        lock.unlock();
        StartTransfer(std::move(p));
        lock.lock();
      }
    }
    int still = 0;
    curl_multi_perform(multi_, &still);
    int left = 0;
    bool finished = false;
    while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      FinishTransfer(m->easy_handle, m->data.result);
      finished = true;
    }
    // A finished transfer frees a slot: start the next waiting request without sleeping.
    if (!finished) curl_multi_poll(multi_, nullptr, 0, int(wait_ms), nullptr);
  }
}

}  // namespace lm::s3

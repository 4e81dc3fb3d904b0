// A tiny HTTP/1.1 server on 127.0.0.1 for the object-store client's unit tests: each
// request goes to a handler that decides the reply (a 503 now, a 200 later, a stall, a
// reset), so retries, priorities and conditional writes are tested without a real store.
// Integration tests use a real Ceph RGW instead.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lm::test {

struct FakeRequest {
  std::string method, target;                  // target: path and query, as sent
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

struct FakeReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int delay_ms = 0;     // before replying
  bool reset = false;   // close the connection instead of replying
};

class FakeHttpServer {
 public:
  explicit FakeHttpServer(std::function<FakeReply(const FakeRequest&)> handler);
  ~FakeHttpServer();
  std::string endpoint() const;  // "http://127.0.0.1:PORT"
  int requests() const { return requests_; }

 private:
  void Accept();
  void Serve(int fd);
  bool ServeRequests(int fd);

  std::function<FakeReply(const FakeRequest&)> handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> connections_;
  std::vector<int> fds_;
};

}  // namespace lm::test

#include "test/store/fake_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace lm::test {

FakeHttpServer::FakeHttpServer(std::function<FakeReply(const FakeRequest&)> handler)
    : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(listen_fd_, 64);
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { Accept(); });
}

FakeHttpServer::~FakeHttpServer() {
  stop_ = true;
  acceptor_.join();
  ::close(listen_fd_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : connections_) t.join();
}

std::string FakeHttpServer::endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

void FakeHttpServer::Accept() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    fds_.push_back(fd);
    connections_.emplace_back([this, fd] { Serve(fd); });
  }
}

void FakeHttpServer::Serve(int fd) {
  if (ServeRequests(fd)) ::close(fd);
}

// False when the connection was reset (and its descriptor already closed).
bool FakeHttpServer::ServeRequests(int fd) {
  std::string buf;
  char chunk[65536];
  for (;;) {
    size_t head_end;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return true;
      buf.append(chunk, size_t(n));
    }
    FakeRequest rq;
    std::string head = buf.substr(0, head_end);
    size_t line_end = head.find("\r\n");
    std::string first = head.substr(0, line_end);
    size_t sp1 = first.find(' '), sp2 = first.rfind(' ');
    rq.method = first.substr(0, sp1);
    rq.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
    for (size_t pos = line_end + 2; pos < head.size();) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      std::string line = head.substr(pos, e - pos);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), ::tolower);
        size_t v = line.find_first_not_of(' ', colon + 1);
        rq.headers[name] = v == std::string::npos ? "" : line.substr(v);
      }
      pos = e + 2;
    }
    buf.erase(0, head_end + 4);
    size_t length = rq.headers.count("content-length") ? std::stoul(rq.headers["content-length"]) : 0;
    while (buf.size() < length) {
      ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return true;
      buf.append(chunk, size_t(n));
    }
    rq.body = buf.substr(0, length);
    buf.erase(0, length);
    requests_++;
    FakeReply r = handler_(rq);
    if (r.delay_ms) std::this_thread::sleep_for(std::chrono::milliseconds(r.delay_ms));
    if (r.reset) {
      linger l{1, 0};  // RST, not FIN
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      ::close(fd);
      std::lock_guard<std::mutex> lock(mu_);
      fds_.erase(std::remove(fds_.begin(), fds_.end(), fd), fds_.end());
      return false;
    }
    std::string out = "HTTP/1.1 " + std::to_string(r.status) + " X\r\n";
    for (auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
    out += "Date: Thu, 26 Nov 2026 12:00:00 GMT\r\n";
    bool has_length = std::any_of(r.headers.begin(), r.headers.end(), [](auto& h) { return h.first == "Content-Length"; });
    if (!has_length) out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    out += "\r\n";
    if (rq.method != "HEAD") out += r.body;
    if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) < 0) return true;
  }
}

}  // namespace lm::test

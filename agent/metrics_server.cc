#include "agent/metrics_server.h"

#include <microhttpd.h>
#include <netdb.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"

namespace lm {

namespace {

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

MHD_Result Reply(MHD_Connection* c, unsigned code, const std::string& body, const char* type) {
  MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_Result ret = MHD_queue_response(c, code, r);
  MHD_destroy_response(r);
  return ret;
}

}  // namespace

struct MetricsHandler {
  static MHD_Result Handle(void* cls, MHD_Connection* c, const char* url, const char* method, const char* /*version*/,
                           const char* /*upload_data*/, size_t* upload_data_size, void** state) {
    static int first_call;
    // The first call only sees the headers; answer once any body has been skipped.
    if (*state == nullptr) {
      *state = &first_call;
      return MHD_YES;
    }
    if (*upload_data_size != 0) {
      *upload_data_size = 0;  // a body is ignored
      return MHD_YES;
    }
    auto* self = static_cast<MetricsServer*>(cls);
    bool head = std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!head && std::strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
      return Reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET /metrics\n", "text/plain; charset=utf-8");
    }
    if (std::strcmp(url, "/metrics") != 0) {
      return Reply(c, MHD_HTTP_NOT_FOUND, "livemount media agent: metrics are at /metrics\n",
                   "text/plain; charset=utf-8");
    }
    try {
      return Reply(c, MHD_HTTP_OK, self->render_(), kContentType);
    } catch (const std::exception& e) {  // never across the C library
      LogError(std::string("metrics: ") + e.what());
      return Reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n", "text/plain; charset=utf-8");
    }
  }
};

Result<ListenAddress> ParseListenAddress(const std::string& text) {
  auto bad = [&](const std::string& why) { return Status::Invalid("--metrics '" + text + "': " + why); };
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return bad("expected HOST:PORT, [IPv6]:PORT or :PORT");
  std::string host = text.substr(0, colon), port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  char* end = nullptr;
  unsigned long p = std::strtoul(port.c_str(), &end, 10);
  if (port.empty() || *end || p > 65535) return bad("the port must be 0-65535");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || !res) return bad(std::string("cannot resolve the address: ") + ::gai_strerror(rc));
  // With no host, the passive lookup offers 0.0.0.0 first: every IPv4 address.
  ListenAddress a;
  std::memcpy(&a.addr, res->ai_addr, res->ai_addrlen);
  a.len = static_cast<socklen_t>(res->ai_addrlen);
  a.ipv6 = res->ai_family == AF_INET6;
  ::freeaddrinfo(res);
  return a;
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& address,
                                                            std::function<std::string()> render) {
  LM_ASSIGN_OR_RETURN(ListenAddress a, ParseListenAddress(address));
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->render_ = std::move(render);
  s->address_ = address;
  unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | (a.ipv6 ? MHD_USE_IPv6 : 0);
  s->daemon_ = MHD_start_daemon(flags, 0, nullptr, nullptr, &MetricsHandler::Handle, s.get(),
                                MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&a.addr),
                                MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 8u,
                                MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                static_cast<size_t>(64 * 1024), MHD_OPTION_END);
  if (!s->daemon_) {
    return Status::IoError("--metrics " + address + ": cannot listen there (" + std::strerror(errno) +
                           "; is the port in use?)");
  }
  const MHD_DaemonInfo* info = MHD_get_daemon_info(s->daemon_, MHD_DAEMON_INFO_BIND_PORT);
  s->port_ = info ? info->port : 0;
  return s;
}

MetricsServer::~MetricsServer() {
  if (daemon_) MHD_stop_daemon(daemon_);
}

}  // namespace lm

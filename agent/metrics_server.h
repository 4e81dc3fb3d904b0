// MetricsServer: `mount --metrics ADDR:PORT` serves GET /metrics (Prometheus text
// exposition, agent/metrics.h) over HTTP, through libmicrohttpd: one polling thread, few
// connections, short timeouts, no request bodies. Anything but GET/HEAD of /metrics is a
// 404 or 405. Rendering runs on the server's thread; it reads counters only.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"

struct MHD_Daemon;

namespace lm {

// "HOST:PORT", "[IPv6]:PORT" or ":PORT" (every address); PORT 0 picks a free one.
struct ListenAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
  bool ipv6 = false;
};
Result<ListenAddress> ParseListenAddress(const std::string& text);

class MetricsServer {
 public:
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& address,
                                                      std::function<std::string()> render);
  ~MetricsServer();  // stops serving; no call of `render` runs after it returns
  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }

 private:
  MetricsServer() = default;
  MHD_Daemon* daemon_ = nullptr;
  std::function<std::string()> render_;
  uint16_t port_ = 0;
  std::string address_;
  friend struct MetricsHandler;
};

}  // namespace lm

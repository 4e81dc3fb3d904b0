// The control socket of a running media agent, the transport of agent/control_protocol.h:
// an abstract Unix socket (no file to clean up) whose name the mount's root answers as the
// xattr user.livemount.control. One JSON object per connection each way, one line each.
// Only the daemon's own user and root may connect (SO_PEERCRED), and a client talks only
// to a daemon of root or of its own user.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "base/env.h"
#include "base/status.h"

namespace lm {

class ControlServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;
  static Result<std::unique_ptr<ControlServer>> Start(const std::string& name, Handler handler);
  ~ControlServer();

 private:
  ControlServer() = default;
  void Loop();
  void Serve(int fd);
  UniqueFd listen_fd_, stop_fd_;
  Handler handler_;
  std::thread thread_;
  std::mutex active_mu_;
  std::condition_variable active_cv_;
  int active_ = 0;  // requests being served; the destructor waits for them
};

// Sends one request and waits up to timeout_ms for the reply: a JSON object (an error reply
// too; control_protocol.h decodes it), or an error of the transport.
Result<nlohmann::json> ControlRequest(const std::string& name, const nlohmann::json& request,
                                      int timeout_ms = 10000);

// Finds the control socket of the media agent mounted at `mountpoint`: only for a real
// livemount FUSE mount (mountinfo) of root or of the caller. A reply comes back only from
// a peer running as root or as the caller (SO_PEERCRED); an error reply keeps its code.
Result<std::string> ControlNameOf(const std::string& mountpoint);
Result<int> DaemonPidOf(const std::string& mountpoint);

}  // namespace lm

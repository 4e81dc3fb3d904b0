// ControlClient: the CLI's side of the control protocol. Typed calls to the media agent
// serving a mountpoint; every reply is decoded strictly, and an error reply comes back as
// its Status with the agent's code (Busy stays Busy).
#pragma once

#include <string>

#include "agent/control_protocol.h"
#include "base/status.h"

namespace lm {

class ControlClient {
 public:
  // The media agent of a livemount mount of root or of this user (ControlNameOf checks).
  static Result<ControlClient> ForMount(const std::string& mountpoint);

  Result<control::MountStats> Stats(int timeout_ms = 10000) const;
  // ganesha takes a few seconds to start; stopping it up to 10 s.
  Result<control::ExportInfo> Export(const control::ExportRequest& r) const;
  Result<control::UnexportReply> Unexport() const;
  // Waits as long as the pre-staging takes.
  Result<control::PrestageReply> Prestage(const control::PrestageRequest& r) const;
  Result<control::DiscardReply> Discard(const control::DiscardRequest& r) const;
  Result<control::ExpireReply> Expire(const control::ExpireRequest& r) const;
  Result<control::ChangesReply> Changes(const control::ChangesRequest& r) const;

  const std::string& mountpoint() const { return mountpoint_; }

 private:
  ControlClient(std::string mountpoint, std::string name)
      : mountpoint_(std::move(mountpoint)), name_(std::move(name)) {}
  template <typename Reply>
  Result<Reply> Call(const control::Request& request, int timeout_ms) const;

  std::string mountpoint_, name_;
};

}  // namespace lm

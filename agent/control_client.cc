#include "agent/control_client.h"

#include "agent/control.h"

namespace lm {

using namespace control;

Result<ControlClient> ControlClient::ForMount(const std::string& mountpoint) {
  LM_ASSIGN_OR_RETURN(std::string name, ControlNameOf(mountpoint));
  return ControlClient(mountpoint, std::move(name));
}

template <typename Reply>
Result<Reply> ControlClient::Call(const Request& request, int timeout_ms) const {
  LM_ASSIGN_OR_RETURN(nlohmann::json reply, ControlRequest(name_, EncodeRequest(request), timeout_ms));
  auto decoded = DecodeReply<Reply>(reply);
  if (!decoded.ok()) return decoded.status().Context(mountpoint_);
  return decoded;
}

Result<MountStats> ControlClient::Stats(int timeout_ms) const { return Call<MountStats>(StatsRequest{}, timeout_ms); }

Result<ExportInfo> ControlClient::Export(const ExportRequest& r) const { return Call<ExportInfo>(r, 60000); }

Result<UnexportReply> ControlClient::Unexport() const { return Call<UnexportReply>(UnexportRequest{}, 30000); }

Result<PrestageReply> ControlClient::Prestage(const PrestageRequest& r) const {
  return Call<PrestageReply>(r, 24 * 3600 * 1000);
}

Result<DiscardReply> ControlClient::Discard(const DiscardRequest& r) const { return Call<DiscardReply>(r, 30000); }
Result<ExpireReply> ControlClient::Expire(const ExpireRequest& r) const { return Call<ExpireReply>(r, 30000); }
// Syncing a copy's written files can take a while on a slow disk.
Result<ChangesReply> ControlClient::Changes(const ChangesRequest& r) const { return Call<ChangesReply>(r, 300000); }

}  // namespace lm

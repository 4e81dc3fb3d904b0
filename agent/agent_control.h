// AgentControl: what a running media agent answers on its control socket (the typed
// requests of control_protocol.h), over the parts its composition root (media_agent.cc)
// built. Each request runs on its own thread (ControlServer), so a long pre-staging never
// holds up `stats`.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <map>
#include <memory>
#include <set>
#include <nlohmann/json.hpp>

#include "agent/control_protocol.h"
#include "agent/expiry_policies.h"
#include "agent/export_supervisor.h"
#include "agent/metrics.h"
#include "agent/media_agent.h"
#include "cache/chunk_source.h"
#include "fs/fuse_ops.h"
#include "fs/live_fs.h"
#include "store/leases.h"
#include "store/repository.h"

namespace lm {

struct AgentParts {
  const MountOptions& options;
  Repository& repo;
  ChunkSource& source;
  LiveFs& fs;
  FuseMount& mount;
  ExportSupervisor& exports;
  LeaseWriter& lease;
  ExpiryPolicies& policies;
};

// Records a hold in the mount's lease at once; a failure is logged (once), not fatal: the
// mount keeps serving, but forget elsewhere cannot see the hold.
void HoldOrWarn(LeaseWriter& lease, const BackupRef& ref, const std::string& why);

class AgentControl {
 public:
  explicit AgentControl(AgentParts parts) : p_(parts) {}
  ~AgentControl() { StopPrestaging(); }  // no background pre-staging outlives the parts it uses

  // One request in, one reply out (an error reply carries its Status code).
  nlohmann::json Handle(const nlohmann::json& request);

  control::MountStats Stats();
  // What `mount --metrics` serves (agent/metrics.h).
  MetricsSnapshot Metrics();
  // Pre-stages a backup copy through this mount's cache; its chunks stay pinned until the
  // mount ends (or until pin_until).
  Result<control::PrestageReply> Prestage(const control::PrestageRequest& r);
  Result<control::DiscardReply> Discard(const control::DiscardRequest& r);
  // Sets or removes a copy's expiry policy (agent/expiry_policies.h).
  Result<control::ExpireReply> Expire(const control::ExpireRequest& r);
  // A copy's files and what of them the overlay holds (after syncing them, if asked).
  Result<control::ChangesReply> Changes(const control::ChangesRequest& r);
  // Discards and unpins every copy whose deadline has passed and that has no open file;
  // returns when to look again (the earliest deadline left, or a minute from now).
  std::chrono::system_clock::time_point ExpireDue();
  Result<control::ExportInfo> Export(const control::ExportRequest& r);
  // Asks running pre-stagings to stop soon (the mount is ending).
  // Cancels every pre-staging, and waits for those started in the background.
  void StopPrestaging();

  // The backup copies this agent holds (open files, overlays, pinned pre-stages), written
  // as its lease in the repository so that forget keeps them; renewed as they change.
  void RefreshLease();
  // Records one hold at once (a first open, a pin), before the caller goes on.
  void Hold(const BackupRef& ref, const std::string& why);

 private:
  AgentParts p_;
  std::mutex pinned_mu_;
  std::set<std::string> pinned_;  // "vm@id" pre-staged with pins for the mount's life
  std::map<std::string, std::vector<Digest>> pinned_digests_;  // what each copy pinned
  std::atomic<uint64_t> staged_chunks_{0}, staged_bytes_{0}, running_{0};
  std::atomic<uint64_t> remaining_chunks_{0}, remaining_bytes_{0};
  // Since when pre-stagings run without a pause, and staged_bytes_ then: their rate.
  std::mutex busy_mu_;
  std::chrono::steady_clock::time_point busy_since_;
  uint64_t busy_bytes_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex background_mu_;
  std::vector<std::thread> background_;  // pre-stagings asked for with `background`
  // What the pre-stagings of each backup copy have left ("vm@id"), for the metrics.
  struct CopyProgress {
    BackupRef ref;
    std::atomic<uint64_t> profile_bytes{0}, hydrate_bytes{0};
  };
  std::mutex progress_mu_;
  std::map<std::string, std::unique_ptr<CopyProgress>> progress_;
  CopyProgress& ProgressOf(const BackupRef& ref);
};

}  // namespace lm

#include "agent/agent_control.h"

#include <unistd.h>

#include "base/log.h"
#include "fs/overlay_store.h"
#include "profile/choice.h"
#include "profile/prestage.h"

namespace lm {

using namespace control;
using nlohmann::json;

namespace {

std::vector<control::OverlayInfo> Overlays(const std::string& state_dir) {
  std::vector<control::OverlayInfo> out;
  auto list = OverlayStore::Scan(state_dir);
  if (!list.ok()) return out;
  for (auto& o : *list) out.push_back({o.backup.Name(), o.entries, o.bytes});
  return out;
}

template <typename T>
json ReplyOf(const Result<T>& r) {
  return r.ok() ? Encode(*r) : EncodeError(r.status());
}

}  // namespace

json AgentControl::Handle(const json& request) {
  auto req = DecodeRequest(request);
  if (!req.ok()) return EncodeError(req.status());
  struct Dispatch {
    AgentControl& a;
    json operator()(const StatsRequest&) const { return Encode(a.Stats()); }
    json operator()(const ExportRequest& r) const { return ReplyOf(a.Export(r)); }
    json operator()(const UnexportRequest&) const { return Encode(UnexportReply{a.p_.exports.Stop()}); }
    json operator()(const PrestageRequest& r) const { return ReplyOf(a.Prestage(r)); }
    json operator()(const DiscardRequest& r) const { return ReplyOf(a.Discard(r)); }
  };
  return std::visit(Dispatch{*this}, *req);
}

MountStats AgentControl::Stats() {
  CacheStats c = p_.source.cache().Stats();
  ChunkSourceStats s = p_.source.Stats();
  FsCounters& f = p_.fs.counters();
  RepoCounters& r = p_.repo.counters();
  MountStats m;
  m.mountpoint = p_.options.mountpoint;
  m.repository = p_.options.repo;
  m.pid = ::getpid();
  m.cache = {p_.options.cache_dir, c.hits,    c.misses,  c.bytes_served, c.inserts,        c.evictions,
             c.corrupt_dropped,    c.insert_failures, c.entries, c.used_bytes, c.capacity_bytes, c.pinned};
  m.repo = {r.chunks_read.load(), r.bytes_read.load(), r.raw_bytes_read.load(), s.fetch_errors};
  m.reads = {f.read_requests.load(), f.read_bytes.load(), f.read_errors.load(), s.zero_bytes, f.opens.load()};
  m.writes = {f.write_requests.load(), f.write_bytes.load()};
  m.overlays = Overlays(p_.options.state_dir);
  m.readahead = {s.readahead_queued, s.readahead_fetched};
  m.prestage = {staged_chunks_.load(), staged_bytes_.load(), running_.load(), s.background_yields,
                remaining_chunks_.load(), remaining_bytes_.load(), 0};
  {
    std::lock_guard lock(busy_mu_);
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - busy_since_).count();
    uint64_t moved = m.prestage.bytes - busy_bytes_;
    if (m.prestage.running > 0 && elapsed > 0.5 && moved > 0)
      m.prestage.seconds_left = static_cast<double>(m.prestage.remaining_bytes) / (moved / elapsed);
  }
  if (auto rq = p_.repo.backend().Requests()) {
    for (int k = 0; k < kIoKinds; k++) {
      const KindStats& q = rq->kinds[k];
      if (q.requests == 0) continue;
      m.requests[IoKindName(IoKind(k))] = {q.requests, q.gets,  q.bytes_in, q.bytes_out, q.retries,
                                           q.failures, q.PercentileMs(0.5), q.PercentileMs(0.9),
                                           q.PercentileMs(0.99)};
    }
  }
  if (auto md = p_.repo.MetadataCacheStats()) m.metadata = {md->hits, md->misses, md->dropped};
  m.namespace_nodes = p_.fs.NodeCount();
  m.export_ = p_.exports.Describe();
  return m;
}

Result<PrestageReply> AgentControl::Prestage(const PrestageRequest& r) {
  LM_ASSIGN_OR_RETURN(BackupRef ref, p_.repo.ResolveSpec(r.backup));
  std::string chosen;
  std::vector<std::string> notes;
  auto p = ChooseProfile(p_.repo, ref, r.profile, p_.options.state_dir, &chosen, &notes);
  for (auto& n : notes) LogWarn("prestage " + ref.Name() + ": " + n);
  LM_RETURN_IF_ERROR(p.status());
  PrestageOptions po;
  po.all = r.all;
  po.threads = static_cast<unsigned>(r.threads);
  po.pin_session = true;
  po.pin_until = r.pin_until;
  po.staged_chunks = &staged_chunks_;
  po.staged_bytes = &staged_bytes_;
  po.remaining_chunks = &remaining_chunks_;
  po.remaining_bytes = &remaining_bytes_;
  po.cancel = &stopping_;
  {
    // Held before the first chunk is fetched: forget must not take the copy meanwhile.
    std::lock_guard lock(pinned_mu_);
    pinned_.insert(ref.Name());
  }
  Hold(ref, "pinned");
  {
    std::lock_guard lock(busy_mu_);
    if (running_++ == 0) busy_since_ = std::chrono::steady_clock::now(), busy_bytes_ = staged_bytes_.load();
  }
  auto sum = lm::Prestage(p_.repo, p_.source, ref, *p, po);
  running_--;
  LM_RETURN_IF_ERROR(sum.status());
  LogInfo("prestaged " + ref.Name() + " from " + chosen + ": " + std::to_string(sum->fetched) +
          " chunks fetched, " + std::to_string(sum->already_cached) + " already cached");
  return PrestageReply{ref.Name(),          chosen,       sum->profile_chunks, sum->total_chunks,
                       sum->already_cached, sum->fetched, sum->failed,         sum->bytes_fetched,
                       sum->missing_files,  sum->seconds};
}

Result<DiscardReply> AgentControl::Discard(const DiscardRequest& r) {
  if (r.backup.find('@') == std::string::npos) return Status::Invalid("discard needs VM@BACKUP");
  LM_ASSIGN_OR_RETURN(BackupRef ref, p_.repo.ResolveSpec(r.backup));
  LM_ASSIGN_OR_RETURN(auto gone, p_.fs.Discard(ref));
  for (auto& [parent, name] : gone) p_.mount.InvalidateEntry(parent, name);
  LogInfo("discarded the overlay of " + ref.Name());
  return DiscardReply{ref.Name()};
}

Result<ExportInfo> AgentControl::Export(const ExportRequest& r) {
  ExportOptions e;
  e.bind = r.bind;
  e.nfs_port = r.nfs_port;
  e.mount_port = r.mount_port;
  e.clients = r.clients;
  e.read_only = r.read_only;
  const MountOptions& o = p_.options;
  e = CompleteExportOptions(o.env, e, o.mountpoint, o.state_dir, o.read_only);
  LM_RETURN_IF_ERROR(e.validate());
  LM_RETURN_IF_ERROR(p_.exports.Start(e));
  auto info = p_.exports.Describe();
  if (!info) return Status::IoError("the export was stopped while it started");
  return *info;
}

void HoldOrWarn(LeaseWriter& lease, const BackupRef& ref, const std::string& why) {
  Status s = lease.Add(ref.Name(), why);
  if (!s.ok()) LogOnce(LogLevel::kWarn, "lease", "cannot record this mount's hold on " + ref.Name() +
                                                     " in the repository (forget may remove it): " + s.message());
}

void AgentControl::Hold(const BackupRef& ref, const std::string& why) { HoldOrWarn(p_.lease, ref, why); }

void AgentControl::RefreshLease() {
  std::map<std::string, std::vector<std::string>> holds;
  for (const BackupRef& b : p_.fs.CopiesInUse()) holds[b.Name()].push_back("open files");
  for (const control::OverlayInfo& o : Overlays(p_.options.state_dir)) holds[o.backup].push_back("overlay");
  {
    std::lock_guard lock(pinned_mu_);
    for (const std::string& b : pinned_) holds[b].push_back("pinned");
  }
  Status s = p_.lease.Set(holds);
  if (!s.ok()) LogOnce(LogLevel::kWarn, "lease", "cannot renew this mount's lease in the repository: " + s.message());
}

}  // namespace lm

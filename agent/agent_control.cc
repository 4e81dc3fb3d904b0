#include "agent/agent_control.h"

#include <unistd.h>

#include <ctime>

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
    json operator()(const ExpireRequest& r) const { return ReplyOf(a.Expire(r)); }
    json operator()(const ChangesRequest& r) const { return ReplyOf(a.Changes(r)); }
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
  m.state_dir = p_.options.state_dir;
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
  for (auto& [name, policy] : p_.policies.All()) m.expiry[name] = policy.second;
  m.export_ = p_.exports.Describe();
  return m;
}

AgentControl::CopyProgress& AgentControl::ProgressOf(const BackupRef& ref) {
  std::lock_guard lock(progress_mu_);
  auto& p = progress_[ref.Name()];
  if (!p) {
    p = std::make_unique<CopyProgress>();
    p->ref = ref;
  }
  return *p;  // never erased: the map lives as long as the agent
}

MetricsSnapshot AgentControl::Metrics() {
  CacheStats c = p_.source.cache().Stats();
  ChunkSourceStats s = p_.source.Stats();
  FsCounters& f = p_.fs.counters();
  RepoCounters& r = p_.repo.counters();
  MetricsSnapshot m;
  m.cache_hits = c.hits;
  m.cache_misses = c.misses;
  m.cache_evictions = c.evictions;
  m.cache_inserts = c.inserts;
  m.cache_damaged = c.corrupt_dropped;
  m.cache_served_bytes = c.bytes_served;
  m.cache_used_bytes = c.used_bytes;
  m.cache_capacity_bytes = c.capacity_bytes;
  m.cache_chunks = c.entries;
  m.cache_pinned_chunks = c.pinned;
  for (int k = 0; k < kIoKinds; k++) {
    m.fetched_chunks[k] = r.chunks_by_kind[k].load();
    m.fetched_bytes[k] = r.bytes_by_kind[k].load();
  }
  m.fetch_errors = s.fetch_errors;
  m.repository_read_latency = r.read_latency.Read();
  m.guest_read_errors = f.read_errors.load();
  m.guest_read_latency = f.read_latency.Read();
  m.prestage_chunks = staged_chunks_.load();
  m.prestage_bytes = staged_bytes_.load();
  m.prestage_running = running_.load();
  if (auto rq = p_.repo.backend().Requests()) {
    for (int k = 0; k < kIoKinds; k++) {
      const KindStats& q = rq->kinds[k];
      m.object_store[IoKindName(IoKind(k))] = {q.requests, q.retries, q.failures};
    }
  }
  auto info = p_.exports.Describe();
  m.nfs_export_configured = info.has_value();
  m.nfs_export_up = info && info->running;
  // One row per backup copy the mount has touched, has an overlay of, or pre-stages.
  std::map<std::string, CopyMetrics> copies;
  auto row = [&](const BackupRef& ref) -> CopyMetrics& {
    CopyMetrics& c = copies[ref.Name()];
    c.vm = ref.vm;
    c.backup = ref.id;
    return c;
  };
  for (const CopyUsage& u : p_.fs.CopyUsages()) {
    CopyMetrics& c = row(u.ref);
    c.reads = u.read_requests;
    c.read_bytes = u.read_bytes;
    c.writes = u.write_requests;
    c.written_bytes = u.write_bytes;
    c.open_files = u.open_files;
  }
  if (auto list = OverlayStore::Scan(p_.options.state_dir); list.ok()) {
    for (const auto& o : *list) {
      CopyMetrics& c = row(o.backup);
      c.overlay_bytes = o.bytes;
      c.overlay_files = o.entries;
    }
  }
  {
    std::lock_guard lock(progress_mu_);
    for (auto& [name, p] : progress_) {
      CopyMetrics& c = row(p->ref);
      c.prestage_remaining_bytes = p->profile_bytes.load();
      c.hydration_remaining_bytes = p->hydrate_bytes.load();
    }
  }
  for (auto& [name, policy] : p_.policies.All()) row(policy.first).expires_unix = policy.second;
  for (auto& [name, c] : copies) m.copies.push_back(std::move(c));
  return m;
}

void AgentControl::StopPrestaging() {
  stopping_ = true;
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(background_mu_);
    threads.swap(background_);
  }
  for (auto& t : threads) t.join();
}

Result<PrestageReply> AgentControl::Prestage(const PrestageRequest& r) {
  LM_ASSIGN_OR_RETURN(BackupRef ref, p_.repo.ResolveSpec(r.backup));
  if (r.background) {
    PrestageRequest now = r;
    now.background = false;
    now.backup = ref.Name();
    std::lock_guard lock(background_mu_);
    if (stopping_) return Status::Busy("the media agent is stopping");
    background_.emplace_back([this, now] {
      auto done = Prestage(now);
      if (!done.ok()) LogError("prestage " + now.backup + ": " + done.status().message());
    });
    PrestageReply started;
    started.backup = ref.Name();
    started.profile = "(choosing, in the background)";
    return started;
  }
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
  CopyProgress& progress = ProgressOf(ref);
  po.profile_remaining_bytes = &progress.profile_bytes;
  po.hydrate_remaining_bytes = &progress.hydrate_bytes;
  po.cancel = &stopping_;
  std::vector<Digest> pinned;
  po.pinned = &pinned;
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
  {
    std::lock_guard lock(pinned_mu_);
    auto& kept = pinned_digests_[ref.Name()];
    kept.insert(kept.end(), pinned.begin(), pinned.end());
  }
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

Result<ChangesReply> AgentControl::Changes(const ChangesRequest& r) {
  LM_ASSIGN_OR_RETURN(BackupRef ref, p_.repo.ResolveSpec(r.backup));
  LM_ASSIGN_OR_RETURN(CopyChanges changes, p_.fs.Changes(ref, r.sync));
  ChangesReply reply;
  reply.backup = ref.Name();
  reply.generation = changes.generation;
  for (const FileChange& f : changes.files) {
    reply.files.push_back({f.path, f.size, f.base_index, f.base_size, f.base_limit, f.written});
  }
  return reply;
}

Result<ExpireReply> AgentControl::Expire(const ExpireRequest& r) {
  if (r.backup.find('@') == std::string::npos) return Status::Invalid("expire needs VM@BACKUP");
  LM_ASSIGN_OR_RETURN(BackupRef ref, p_.repo.ResolveSpec(r.backup));
  if (r.after == 0) {
    LM_RETURN_IF_ERROR(p_.policies.Clear(ref));
    LogInfo("removed the expiry policy of " + ref.Name());
    return ExpireReply{ref.Name(), 0};
  }
  int64_t deadline = static_cast<int64_t>(std::time(nullptr)) + r.after;
  LM_RETURN_IF_ERROR(p_.policies.Set(ref, deadline));
  LogInfo("the overlay of " + ref.Name() + " expires in " + FormatDuration(r.after));
  return ExpireReply{ref.Name(), deadline};
}

std::chrono::system_clock::time_point AgentControl::ExpireDue() {
  auto now = std::chrono::system_clock::now();
  int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  std::set<std::string> in_use;
  for (const BackupRef& b : p_.fs.CopiesInUse()) in_use.insert(b.Name());
  for (const BackupRef& ref : p_.policies.Due(now_s)) {
    if (in_use.count(ref.Name())) {
      LogOnce(LogLevel::kInfo, "expiry-open-" + ref.Name(),
              ref.Name() + " has expired but files of it are open; it is discarded once they are closed");
      continue;
    }
    auto gone = p_.fs.Discard(ref);
    Status s = gone.status();
    // A read-only mount has no overlay, and a copy forgotten since has nothing left to drop.
    if (gone.ok() || s.code() == Code::kReadOnly || s.code() == Code::kNotFound) {
      if (gone.ok()) {
        for (auto& [parent, name] : *gone) p_.mount.InvalidateEntry(parent, name);
      }
      std::vector<Digest> pinned;
      {
        std::lock_guard lock(pinned_mu_);
        pinned_.erase(ref.Name());
        pinned = std::move(pinned_digests_[ref.Name()]);
        pinned_digests_.erase(ref.Name());
      }
      for (const Digest& d : pinned) p_.source.cache().Unpin(d);
      s = p_.policies.Clear(ref);
      if (s.ok()) LogInfo("expired " + ref.Name() + ": its overlay is discarded and " + std::to_string(pinned.size()) +
                          " pre-staged chunks unpinned");
    }
    if (!s.ok()) LogOnce(LogLevel::kWarn, "expiry-" + ref.Name(), "cannot expire " + ref.Name() + ": " + s.message());
  }
  auto next = now + std::chrono::minutes(1);
  if (auto e = p_.policies.Earliest()) {
    auto at = std::chrono::system_clock::time_point(std::chrono::seconds(*e));
    if (at > now && at < next) next = at;
  }
  return next;
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

#include "agent/media_agent.h"

#include "agent/mount_table.h"
#include "base/state_layout.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <atomic>
#include <thread>

#include "cache/chunk_source.h"
#include "agent/control.h"
#include "fs/fuse_ops.h"
#include "fs/live_fs.h"
#include "profile/prestage.h"
#include "base/log.h"

namespace lm {

using nlohmann::json;

namespace {

// An error reply carries the status code, so the CLI can tell Busy from NotFound.
json ErrorReply(const Status& s) { return {{"error", s.message()}, {"code", static_cast<int>(s.code())}}; }


std::string HomeDir(const char* sub) {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/tmp") + sub;
}

// Larger kernel read-ahead on the mount's backing device (best effort; needs root). It
// stats the mountpoint, so it runs once the loop serves requests.
void RaiseKernelReadahead(const std::string& mountpoint) {
  std::thread([mountpoint] {
    struct stat st;
    if (::stat(mountpoint.c_str(), &st) != 0) return;
    std::string path = "/sys/class/bdi/" + std::to_string(major(st.st_dev)) + ":" +
                       std::to_string(minor(st.st_dev)) + "/read_ahead_kb";
    std::ofstream f(path);
    if (f) f << "1024\n";
    LogDebug(std::string("kernel read-ahead ") + (f ? "raised to 1 MiB via " : "unchanged: ") + path);
  }).detach();
}

json OverlaysJson(const std::string& state_dir) {
  json out = json::array();
  auto list = OverlayStore::Scan(state_dir);
  if (!list.ok()) return out;
  for (auto& o : *list) {
    out.push_back({{"backup", o.backup.Name()}, {"files", o.entries}, {"bytes", o.bytes}});
  }
  return out;
}

struct PrestageCounters {
  std::atomic<uint64_t> chunks{0}, bytes{0};
  std::atomic<int> running{0};
  std::atomic<bool> stopping{false};
};

json SummaryJson(const BackupRef& b, const std::string& profile, const PrestageSummary& r) {
  return {{"backup", b.Name()},           {"profile", profile},
          {"profile_chunks", r.profile_chunks}, {"total_chunks", r.total_chunks},
          {"already_cached", r.already_cached}, {"fetched", r.fetched},
          {"failed", r.failed},           {"bytes_fetched", r.bytes_fetched},
          {"missing_files", r.missing_files}, {"seconds", r.seconds}};
}

// Pre-stages one backup copy through this daemon's cache; pinned until the mount ends.
json RunPrestageHere(Repository& repo, ChunkSource& source, const std::string& state_dir,
                     PrestageCounters& counters, const std::string& spec,
                     const std::string& profile_path, bool all, int64_t pin_until) {
  auto ref = repo.ResolveSpec(spec);
  if (!ref.ok()) return ErrorReply(ref.status());
  std::string chosen;
  std::vector<std::string> notes;
  auto p = ChooseProfile(repo, *ref, profile_path, state_dir, &chosen, &notes);
  for (auto& n : notes) LogWarn("prestage " + ref->Name() + ": " + n);
  if (!p.ok()) return ErrorReply(p.status());
  PrestageOptions po;
  po.all = all;
  po.pin_session = true;
  po.pin_until = pin_until;
  po.staged_chunks = &counters.chunks;
  po.staged_bytes = &counters.bytes;
  po.cancel = &counters.stopping;
  counters.running++;
  auto r = Prestage(repo, source, *ref, *p, po);
  counters.running--;
  if (!r.ok()) return ErrorReply(r.status());
  LogInfo("prestaged " + ref->Name() + " from " + chosen + ": " + std::to_string(r->fetched) +
          " chunks fetched, " + std::to_string(r->already_cached) + " already cached");
  return SummaryJson(*ref, chosen, *r);
}

json StatsJson(const MountOptions& o, LiveFs& fs, ChunkSource& source, Repository& repo,
               const PrestageCounters& pc) {
  CacheStats c = source.cache().Stats();
  ChunkSourceStats s = source.Stats();
  FsCounters& f = fs.counters();
  RepoCounters& r = repo.counters();
  return {
      {"mountpoint", o.mountpoint},
      {"repository", o.repo},
      {"pid", ::getpid()},
      {"cache",
       {{"dir", o.cache_dir},
        {"hits", c.hits},
        {"misses", c.misses},
        {"bytes_served", c.bytes_served},
        {"inserts", c.inserts},
        {"evictions", c.evictions},
        {"corrupt_dropped", c.corrupt_dropped},
        {"insert_failures", c.insert_failures},
        {"entries", c.entries},
        {"size", c.used_bytes},
        {"capacity", c.capacity_bytes},
        {"pinned", c.pinned}}},
      {"repo",
       {{"chunks_fetched", r.chunks_read.load()},
        {"bytes_fetched", r.bytes_read.load()},
        {"raw_bytes_fetched", r.raw_bytes_read.load()},
        {"errors", s.fetch_errors}}},
      {"reads",
       {{"requests", f.read_requests.load()},
        {"bytes", f.read_bytes.load()},
        {"errors", f.read_errors.load()},
        {"zero_bytes", s.zero_bytes},
        {"opens", f.opens.load()}}},
      {"writes", {{"requests", f.write_requests.load()}, {"bytes", f.write_bytes.load()}}},
      {"overlays", OverlaysJson(o.state_dir)},
      {"readahead", {{"queued", s.readahead_queued}, {"fetched", s.readahead_fetched}}},
      {"prestage", {{"chunks", pc.chunks.load()}, {"bytes", pc.bytes.load()}, {"running", pc.running.load()},
                    {"yielded_to_guest_reads", s.background_yields}}},
      {"namespace", {{"nodes", fs.ns().size()}}},
  };
}

// Everything after the fork: set up, report readiness on `ready_fd`, serve.
int Serve(const MountOptions& o, int ready_fd) {
  auto report = [&](const Status& s) {
    if (ready_fd < 0) {
      if (!s.ok()) std::fprintf(stderr, "livemount: %s\n", s.message().c_str());
      return;
    }
    std::string msg = s.ok() ? "ok" : s.message();
    (void)!::write(ready_fd, msg.data(), msg.size());
    ::close(ready_fd);
  };
  RepoOptions ro;
  ro.env = o.env;
  auto repo = Repository::Open(o.repo, ro);
  if (!repo.ok()) return report(repo.status()), 1;
  auto cache = ReadCache::Open(CacheOptions{o.env, o.cache_dir, o.cache_size, (*repo)->chunk_size()});
  if (!cache.ok()) return report(cache.status().Context("--cache-dir")), 1;
  ChunkSource source(**repo, **cache, ChunkSourceOptions{o.fetch_threads});
  std::unique_ptr<OverlayStore> overlays;
  if (!o.read_only) {
    auto st = OverlayStore::Open(o.state_dir);
    if (!st.ok()) return report(st.status().Context("--state-dir")), 1;
    overlays = std::move(st).value();
  }
  // Inode numbers outlive the daemon, so NFS handles stay valid across restarts.
  auto inodes = InodeIndex::Open(o.state_dir);
  if (!inodes.ok()) return report(inodes.status().Context("--state-dir")), 1;
  LiveFs fs(**repo, source,
            LiveFsOptions{o.readahead_chunks, overlays.get(), inodes->get(), o.state_dir,
                          o.record_reads});
  std::string control_name = "livemount-" + std::to_string(::getpid()) + "-" + RandomHex(4);
  FuseOptions fo{o.mountpoint, o.allow_other, o.debug, o.fuse_threads, control_name};
  PrestageCounters prestaged;
  auto mount = FuseMount::Mount(fs, fo);
  if (!mount.ok()) return report(mount.status()), 1;
  std::mutex export_mu;
  std::unique_ptr<NfsExport> nfs;  // declared after the mount: stops before it unmounts
  bool export_starting = false;    // under export_mu
  // Starts the export unless one runs; the lock is not held while ganesha starts, so
  // stats stay quick.
  auto start_export = [&](const ExportOptions& e) -> Status {
    {
      std::lock_guard lock(export_mu);
      if (export_starting || (nfs && nfs->running())) return Status::Busy(o.mountpoint + " is already exported");
      export_starting = true;
      nfs.reset();
    }
    auto started = NfsExport::Start(e);
    std::lock_guard lock(export_mu);
    export_starting = false;
    if (!started.ok()) return started.status();
    nfs = std::move(started).value();
    return Status::Ok();
  };
  auto control = ControlServer::Start(control_name, [&](const json& req) -> json {
    std::string cmd = req.value("cmd", "");
    if (cmd == "stats") {
      json j = StatsJson(o, fs, source, **repo, prestaged);
      std::lock_guard lock(export_mu);
      j["export"] = nfs ? nfs->Describe() : json(nullptr);
      return j;
    }
    if (cmd == "export") {
      ExportOptions e;
      try {
        e.bind = req.value("bind", e.bind);
        e.nfs_port = req.value("nfs_port", e.nfs_port);
        e.mount_port = req.value("mount_port", e.mount_port);
        e.clients = req.value("clients", std::vector<std::string>{});
        e.read_only = req.value("read_only", false);
      } catch (const json::exception&) {
        return {{"error", "malformed export request"}};
      }
      Status s = start_export(CompleteExportOptions(o.env, e, o.mountpoint, o.state_dir, o.read_only));
      if (!s.ok()) return ErrorReply(s);
      std::lock_guard lock(export_mu);
      return nfs ? nfs->Describe() : json{{"error", "the export was stopped while it started"}};
    }
    if (cmd == "unexport") {
      std::lock_guard lock(export_mu);
      bool was = nfs && nfs->running();
      nfs.reset();
      return {{"ok", true}, {"was_exported", was}};
    }
    if (cmd == "prestage") {
      return RunPrestageHere(**repo, source, o.state_dir, prestaged, req.value("backup", ""),
                             req.value("profile", ""), req.value("all", false),
                             req.value("pin_until", int64_t{0}));
    }
    if (cmd == "discard") {
      std::string spec = req.value("backup", "");
      if (spec.find('@') == std::string::npos) return {{"error", "discard needs VM@BACKUP"}};
      auto ref = (*repo)->ResolveSpec(spec);
      if (!ref.ok()) return ErrorReply(ref.status());
      auto gone = fs.ns().Discard(*ref);
      if (!gone.ok()) return ErrorReply(gone.status());
      for (auto& [parent, name] : *gone) (*mount)->InvalidateEntry(parent, name);
      LogInfo("discarded the overlay of " + ref->Name());
      return {{"ok", true}, {"backup", ref->Name()}};
    }
    return {{"error", "unknown command '" + cmd + "'"}};
  });
  if (!control.ok()) return report(control.status()), 1;
  LogInfo("mounted " + o.repo + " at " + o.mountpoint + " (cache " + o.cache_dir + ", " +
          FormatBytes(o.cache_size) + "; pid " + std::to_string(::getpid()) + ")");
  // The NFS export can only start once the FUSE loop serves (ganesha looks at the mount),
  // so with --export readiness is reported from this thread, after the loop started.
  std::atomic<bool> start_failed{false};
  std::thread exporter([&] {
    Status st = o.nfs_export ? start_export(o.export_options) : Status::Ok();
    report(st);
    if (!st.ok()) {
      LogError(st.message());
      start_failed = true;
      (*mount)->Abort();
    }
  });
  if (ready_fd >= 0) {
    // Detach from the terminal; stderr already goes to the log file.
    int null_fd = ::open("/dev/null", O_RDWR);
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    ::close(null_fd);
  }
  RaiseKernelReadahead(o.mountpoint);
  // Pre-staging on start runs beside the guests' reads, which go first.
  std::thread starter([&] {
    for (const std::string& spec : o.prestage) {
      json r = RunPrestageHere(**repo, source, o.state_dir, prestaged, spec, "", o.hydrate, 0);
      if (r.contains("error")) LogError("prestage " + spec + ": " + r["error"].get<std::string>());
    }
  });
  Status s = (*mount)->Run();
  prestaged.stopping = true;
  exporter.join();
  starter.join();
  if (!s.ok()) LogError(s.message());
  control->reset();
  nfs.reset();  // ganesha holds files of the mount open
  mount->reset();  // unmounts if still mounted
  fs.FlushTraces();
  LogInfo("unmounted " + o.mountpoint);
  return s.ok() && !start_failed ? 0 : 1;  // the chunk source, then the cache, close as they go out of scope
}

}  // namespace

std::string DefaultStateDir() {
  return ::geteuid() == 0 ? "/var/lib/livemount" : HomeDir("/.local/state/livemount");
}

std::string DefaultCacheDir() {
  return ::geteuid() == 0 ? "/var/cache/livemount" : HomeDir("/.cache/livemount");
}

ExportOptions CompleteExportOptions(Env* env, ExportOptions e, const std::string& mountpoint,
                                    const std::string& state_dir, bool read_only) {
  e.mountpoint = mountpoint;
  e.env = env;
  e.dir = StateLayout(state_dir).ExportDir();
  e.read_only = e.read_only || read_only;
  return e;
}

Status MountOptions::validate() {
  if (!env) return Status::Invalid("mount options: no env");
  if (cache_dir.empty()) cache_dir = DefaultCacheDir();
  if (state_dir.empty()) state_dir = DefaultStateDir();
  LogLevel level;
  if (!ParseLogLevel(log_level, &level)) {
    return Status::Invalid("--log-level must be error, warn, info or debug");
  }
  if (!IsDirectory(repo)) return Status::NotFound(repo + ": no such repository directory");
  if (cache_size < (1ull << 20)) return Status::Invalid("--cache-size must be at least 1M");
  // Never stack on another mount: a live one would be hidden, a dead one (its agent was
  // killed) must be cleaned up first, and its files would otherwise reappear later.
  if (auto m = FindMount(mountpoint)) {
    struct stat st;
    if (::stat(mountpoint.c_str(), &st) != 0 && errno == ENOTCONN) {
      return Status::Busy(mountpoint + ": a livemount mount whose media agent is gone; clean it up with "
                          "livemount umount " + mountpoint);
    }
    return Status::Busy(mountpoint + ": already a mountpoint (" + m->fstype + " from " + m->source +
                        "); refusing to mount on top of it");
  }
  if (!IsDirectory(mountpoint)) return Status::NotFound(mountpoint + ": mountpoint is not a directory");
  if (!nonempty) {
    auto names = ListDir(mountpoint);
    if (!names.ok()) return names.status().Context("mountpoint");
    if (!names->empty()) {
      return Status::Invalid(mountpoint + ": mountpoint is not empty (its files would be hidden; --nonempty allows it)");
    }
  }
  if (fetch_threads < 1 || fetch_threads > 64) return Status::Invalid("--fetch-threads must be 1-64");
  if (fuse_threads < 1 || fuse_threads > 256) return Status::Invalid("--fuse-threads must be 1-256");
  if (readahead_chunks > 1024) return Status::Invalid("--readahead must be at most 1024 chunks");
  LM_RETURN_IF_ERROR(MkdirAll(state_dir).Context("--state-dir"));
  LM_RETURN_IF_ERROR(MkdirAll(cache_dir).Context("--cache-dir"));
  repo = AbsolutePath(repo);
  mountpoint = AbsolutePath(mountpoint);
  cache_dir = AbsolutePath(cache_dir);
  state_dir = AbsolutePath(state_dir);
  if (log_file.empty() && !foreground) log_file = StateLayout(state_dir).LogFile();
  if (nfs_export) {
    export_options = CompleteExportOptions(env, export_options, mountpoint, state_dir, read_only);
    LM_RETURN_IF_ERROR(export_options.validate());
  }
  if (!record_reads.empty() && record_reads[0] != '/') {  // the daemon runs in /
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd)) record_reads = JoinPath(cwd, record_reads);
  }
  return Status::Ok();
}

int RunMediaAgent(MountOptions o) {
  Status v = o.validate();
  if (!v.ok()) {
    std::fprintf(stderr, "livemount: %s\n", v.message().c_str());
    return 1;
  }
  LogLevel level;
  ParseLogLevel(o.log_level, &level);
  SetLogLevel(level);
  if (!o.log_file.empty() && !SetLogFile(o.log_file)) {
    std::fprintf(stderr, "livemount: cannot open log file %s\n", o.log_file.c_str());
    return 1;
  }
  if (o.foreground) return Serve(o, -1);

  // Fork before any thread exists (RocksDB, fetchers, FUSE workers all start in the child).
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    std::perror("livemount: pipe");
    return 1;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("livemount: fork");
    return 1;
  }
  if (pid == 0) {
    ::close(pipefd[0]);
    ::setsid();
    int log_fd = ::open(o.log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (log_fd >= 0) {
      ::dup2(log_fd, 2);  // libfuse's own messages land in the log too
      ::close(log_fd);
    }
    if (::chdir("/") != 0) {}
    ::_exit(Serve(o, pipefd[1]));
  }
  ::close(pipefd[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) msg.append(buf, n);
  ::close(pipefd[0]);
  if (msg == "ok") {
    std::printf("mounted %s at %s (pid %d, log %s)\n", o.repo.c_str(), o.mountpoint.c_str(), pid,
                o.log_file.c_str());
    if (o.nfs_export) {
      std::printf("\n%s", HypervisorInstructions(o.export_options, AdvertisedAddress(o.export_options)).c_str());
    }
    return 0;
  }
  if (msg.empty()) msg = "the media agent died while starting; see " + o.log_file;
  std::fprintf(stderr, "livemount: %s\n", msg.c_str());
  return 1;
}

}  // namespace lm

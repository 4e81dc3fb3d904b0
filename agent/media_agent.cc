#include "agent/media_agent.h"

#include <fcntl.h>
#include <systemd/sd-daemon.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/agent_control.h"
#include "agent/control.h"
#include "agent/launch.h"
#include "agent/metrics_server.h"
#include "agent/mount_table.h"
#include "base/log.h"
#include "base/state_layout.h"
#include "cache/chunk_source.h"
#include "cache/chunk_table_db.h"
#include "cache/metadata_cache.h"
#include "fs/fuse_ops.h"
#include "fs/live_fs.h"
#include "store/repository.h"

namespace lm {

using nlohmann::json;

namespace {

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

// Everything after the fork: set up, report readiness on `ready_fd`, serve.
int Serve(const MountOptions& o, int ready_fd) {
  // What the starting command prints besides "mounted ..." (the metrics address).
  std::string ready_notes;
  auto report = [&](const Status& s) {
    // Under systemd (Type=notify, NOTIFY_SOCKET set): ready once the mount serves; a no-op
    // anywhere else.
    if (s.ok()) {
      sd_notifyf(0, "READY=1\nSTATUS=serving %s at %s\nMAINPID=%d", o.repo.c_str(), o.mountpoint.c_str(),
                 static_cast<int>(::getpid()));
    } else {
      sd_notifyf(0, "STATUS=failed: %s\nERRNO=%d", s.message().c_str(), EIO);
    }
    if (ready_fd < 0) {
      if (!s.ok()) std::fprintf(stderr, "livemount: %s\n", s.message().c_str());
      return;
    }
    std::string msg = s.ok() ? "ok\n" + ready_notes : s.message();
    (void)!::write(ready_fd, msg.data(), msg.size());
    ::close(ready_fd);
  };
  // Metadata objects read before come from the cache directory: a restart, or a mount of a
  // repository in a bucket, starts without reading the index again.
  auto metadata = MetadataCache::Open(o.cache_dir);
  if (!metadata.ok()) return report(metadata.status().Context("--cache-dir")), 1;
  RepoOptions ro;
  ro.env = o.env;
  ro.password = o.password;
  ro.object_cache = metadata->get();
  auto chunk_table = ChunkIndexFromEnvironment(o.cache_dir);
  if (!chunk_table.ok()) return report(chunk_table.status()), 1;
  ro.chunk_table = *chunk_table;
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
  // What this agent holds is written into the repository, so forget elsewhere keeps it;
  // a keeper thread (below) renews it and follows changes.
  LeaseWriter lease((*repo)->backend(), o.env);
  // Live mount policies: checked by a keeper thread (below) at each deadline, and again
  // when a copy's last file is closed.
  auto policies = ExpiryPolicies::Open(o.env, StateLayout(o.state_dir).ExpiryFile(), o.expire_after);
  if (!policies.ok()) return report(policies.status()), 1;
  std::mutex lease_mu;
  std::condition_variable lease_cv;
  bool ending = false, refresh_now = false, expire_now = false;
  auto refresh_soon = [&](const BackupRef&) {
    std::lock_guard lock(lease_mu);
    refresh_now = expire_now = true;
    lease_cv.notify_all();
  };
  (*policies)->OnChange([&] {
    std::lock_guard lock(lease_mu);
    expire_now = true;
    lease_cv.notify_all();
  });
  auto hold_on_open = [&lease, &policies](const BackupRef& b) {
    HoldOrWarn(lease, b, "open files");
    Status s = (*policies)->FirstUse(b, static_cast<int64_t>(std::time(nullptr)));
    if (!s.ok()) LogWarn("cannot record the expiry policy of " + b.Name() + ": " + s.message());
  };
  LiveFsOptions fs_options;
  fs_options.readahead_chunks = o.readahead_chunks;
  fs_options.overlays = overlays.get();
  fs_options.inodes = inodes->get();
  fs_options.state_dir = o.state_dir;
  fs_options.record_reads = o.record_reads;
  fs_options.on_first_open = hold_on_open;
  fs_options.on_last_close = refresh_soon;
  fs_options.views = o.views;
  fs_options.mountpoint = o.mountpoint;
  // Generated libvirt domains run where this mount is: under KVM if this host has it.
  fs_options.domain_type = HostHasKvm() ? "kvm" : "qemu";
  LiveFs fs(**repo, source, fs_options);
  std::string control_name = "livemount-" + std::to_string(::getpid()) + "-" + RandomHex(4);
  FuseOptions fo{o.mountpoint, o.allow_other, o.debug, o.fuse_threads, control_name};
  auto mount = FuseMount::Mount(fs, fo);
  if (!mount.ok()) return report(mount.status()), 1;
  ExportSupervisor exports;  // declared after the mount: stops before it unmounts
  AgentControl agent(AgentParts{o, **repo, source, fs, **mount, exports, lease, **policies});
  auto control = ControlServer::Start(control_name, [&](const json& req) { return agent.Handle(req); });
  if (!control.ok()) return report(control.status()), 1;
  std::unique_ptr<MetricsServer> metrics;
  if (!o.metrics.empty()) {
    auto m = MetricsServer::Start(o.metrics, [&agent] { return RenderMetrics(agent.Metrics()); });
    if (!m.ok()) return report(m.status()), 1;
    metrics = std::move(m).value();
    std::string where = o.metrics.substr(0, o.metrics.rfind(':') + 1) + std::to_string(metrics->port());
    ready_notes += "metrics at http://" + where + "/metrics\n";
    LogInfo("serving metrics at http://" + where + "/metrics");
  }
  LogInfo("mounted " + o.repo + " at " + o.mountpoint + " (cache " + o.cache_dir + ", " +
          FormatBytes(o.cache_size) + "; pid " + std::to_string(::getpid()) + ")");
  // The NFS export can only start once the FUSE loop serves (ganesha looks at the mount),
  // so with --export readiness is reported from this thread, after the loop started.
  std::atomic<bool> start_failed{false};
  std::thread exporter([&] {
    Status st = o.nfs_export ? exports.Start(o.export_options) : Status::Ok();
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
  // The lease follows what the mount holds (overlays from earlier lives too), renewed
  // well within its ttl.
  std::thread lease_keeper([&] {
    std::unique_lock lock(lease_mu);
    while (!ending) {
      refresh_now = false;
      lock.unlock();
      agent.RefreshLease();
      lock.lock();
      lease_cv.wait_for(lock, std::chrono::seconds(60), [&] { return ending || refresh_now; });
    }
  });
  std::thread expiry_keeper([&] {
    std::unique_lock lock(lease_mu);
    while (!ending) {
      expire_now = false;
      lock.unlock();
      auto next = agent.ExpireDue();
      lock.lock();
      lease_cv.wait_until(lock, next, [&] { return ending || expire_now; });
    }
  });
  // Pre-staging on start runs beside the guests' reads, which go first.
  std::thread starter([&] {
    for (const std::string& spec : o.prestage) {
      auto r = agent.Prestage(control::PrestageRequest{spec, "", o.hydrate, 0});
      if (!r.ok()) LogError("prestage " + spec + ": " + r.status().message());
    }
  });
  Status s = (*mount)->Run();
  sd_notify(0, "STOPPING=1");
  agent.StopPrestaging();
  {
    std::lock_guard lock(lease_mu);
    ending = true;
  }
  lease_cv.notify_all();
  lease_keeper.join();
  expiry_keeper.join();
  exporter.join();
  starter.join();
  if (!s.ok()) LogError(s.message());
  metrics.reset();
  control->reset();
  exports.Stop();  // ganesha holds files of the mount open
  mount->reset();  // unmounts if still mounted
  fs.FlushTraces();
  lease.Release();  // after the unmount: nothing of the repository is held any more
  LogInfo("unmounted " + o.mountpoint);
  return s.ok() && !start_failed ? 0 : 1;  // the chunk source, then the cache, close as they go out of scope
}

}  // namespace

std::string DefaultStateDir() {
  const char* dir = std::getenv("LIVEMOUNT_STATE_DIR");
  if (dir && *dir) return dir;
  return ::geteuid() == 0 ? "/var/lib/livemount" : HomeDir("/.local/state/livemount");
}

std::string DefaultCacheDir() {
  const char* dir = std::getenv("LIVEMOUNT_CACHE_DIR");
  if (dir && *dir) return dir;
  return ::geteuid() == 0 ? "/var/cache/livemount" : HomeDir("/.cache/livemount");
}

Result<ChunkTableOpener> ChunkIndexFromEnvironment(const std::string& cache_dir) {
  const char* how = std::getenv("LIVEMOUNT_CHUNK_INDEX");
  std::string h = how ? how : "";
  if (h.empty() || h == "disk") return DiskChunkTableOpener(cache_dir);
  if (h == "memory") return ChunkTableOpener();
  return Status::Invalid("LIVEMOUNT_CHUNK_INDEX: expected 'disk' or 'memory', got '" + h + "'");
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
  if (!IsObjectStoreLocation(repo) && !IsDirectory(repo)) return Status::NotFound(repo + ": no such repository directory");
  if (cache_size < (1ull << 20)) return Status::Invalid("--cache-size must be at least 1M");
  LM_RETURN_IF_ERROR(ChunkIndexFromEnvironment(cache_dir).status());  // said before the daemon starts
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
  if (!metrics.empty()) LM_RETURN_IF_ERROR(ParseListenAddress(metrics).status());
  if (expire_after < 0) return Status::Invalid("--expire-after must not be negative");
  LM_RETURN_IF_ERROR(MkdirAll(state_dir).Context("--state-dir"));
  LM_RETURN_IF_ERROR(MkdirAll(cache_dir).Context("--cache-dir"));
  repo = AbsoluteLocation(repo);
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
  if (msg.rfind("ok\n", 0) == 0) {
    if (o.quiet) return 0;
    std::printf("mounted %s at %s (pid %d, log %s)\n%s", o.repo.c_str(), o.mountpoint.c_str(), pid,
                o.log_file.c_str(), msg.substr(3).c_str());
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

// mount, umount, stats: the media agent.
#include <fmt/core.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "agent/control.h"
#include "base/subprocess.h"
#include "agent/control_client.h"
#include "agent/media_agent.h"
#include "agent/mount_table.h"
#include "store/repository.h"
#include "tools/cli/password.h"
#include "tools/cli/commands.h"
#include "tools/cli/config.h"

namespace lm::cli {

using nlohmann::json;

namespace {

int Umount(const std::string& mountpoint, bool lazy) {
  auto mount = FindMount(mountpoint);
  if (!mount) return Report(Status::NotFound(mountpoint + ": not a livemount mount (not a mountpoint)"));
  if (mount->fstype != kLivemountFsType) {
    return Report(Status::Invalid(mountpoint + ": not a livemount mount (it is a " + mount->fstype + " mount)"));
  }
  auto pid = DaemonPidOf(mountpoint);
  if (!pid.ok() && pid.status().code() == Code::kBusy) {
    // The media agent was killed: its mount answers nothing ("Transport endpoint is not
    // connected"). Detach it; no data is lost (overlays are synced, the cache is rebuilt).
    std::string err;
    if (RunCommand({"fusermount3", "-u", "-z", mountpoint}, &err) != 0) {
      return Report(Status::Busy("cannot clean up " + mountpoint + ": " + (err.empty() ? "fusermount3 failed" : err)));
    }
    fmt::print("cleaned up {}: its media agent was no longer running\n", mountpoint);
    return 0;
  }
  if (!pid.ok()) return Report(pid.status());
  // An NFS export holds files of the mount open: it goes first.
  if (auto agent = ControlClient::ForMount(mountpoint); agent.ok()) {
    auto r = agent->Unexport();
    if (r.ok() && r->was_exported) fmt::print("stopped the NFS export of {}\n", mountpoint);
  }
  std::string err;
  std::vector<std::string> argv = {"fusermount3", "-u"};
  if (lazy) argv.push_back("-z");
  argv.push_back(mountpoint);
  if (RunCommand(argv, &err) != 0) {
    return Report(Status::Busy("cannot unmount " + mountpoint + ": " +
                               (err.empty() ? "fusermount3 failed" : err)));
  }
  // Wait for the daemon to flush its cache and exit.
  if (!WaitUntil(std::chrono::seconds(60), std::chrono::milliseconds(20), [&] { return !ProcessAlive(*pid); })) {
    return Report(Status::Busy("unmounted " + mountpoint + ", but the media agent (pid " +
                               std::to_string(*pid) + ") is still running"));
  }
  fmt::print("unmounted {}\n", mountpoint);
  return 0;
}

int Stats(const std::string& mountpoint, bool as_json) {
  auto agent = ControlClient::ForMount(mountpoint);
  if (!agent.ok()) return Report(agent.status());
  auto reply = agent->Stats();
  if (!reply.ok()) return Report(reply.status());
  const control::MountStats& j = *reply;
  if (as_json) {
    PrintJson(control::Encode(j));
    return 0;
  }
  const auto& c = j.cache;
  const auto& r = j.repo;
  fmt::print("mount       {} (pid {}) from {}\n", j.mountpoint, j.pid, j.repository);
  fmt::print("reads       {} requests, {}, {} errors\n", j.reads.requests, FormatBytes(j.reads.bytes), j.reads.errors);
  fmt::print("cache       {} hits, {} misses ({:.1f}% hits), {} served\n", c.hits, c.misses,
             c.hits + c.misses ? 100.0 * c.hits / (c.hits + c.misses) : 0.0, FormatBytes(c.bytes_served));
  fmt::print("            {} of {} used, {} chunks, {} pinned, {} evictions, {} damaged dropped\n",
             FormatBytes(c.size), FormatBytes(c.capacity), c.entries, c.pinned, c.evictions, c.corrupt_dropped);
  fmt::print("repository  {} chunks fetched, {} read, {} errors\n", r.chunks_fetched,
             FormatBytes(r.bytes_fetched), r.errors);
  fmt::print("read-ahead  {} queued, {} fetched\n", j.readahead.queued, j.readahead.fetched);
  fmt::print("prestage    {} chunks, {}", j.prestage.chunks, FormatBytes(j.prestage.bytes));
  if (j.prestage.running > 0) {
    fmt::print("; {} running, {} remaining ({} chunks)", j.prestage.running, FormatBytes(j.prestage.remaining_bytes),
               j.prestage.remaining_chunks);
    if (j.prestage.seconds_left > 0) fmt::print(", about {:.0f} s left", j.prestage.seconds_left);
  }
  fmt::print("\n");
  fmt::print("metadata    {} objects from the local copies, {} read from the repository\n", j.metadata.hits,
             j.metadata.misses);
  fmt::print("writes      {} requests, {}\n", j.writes.requests, FormatBytes(j.writes.bytes));
  for (auto& [kind, q] : j.requests) {
    fmt::print("s3 {:<8} {} requests ({} GETs), {} in, {} out, {} retries, {} failed, latency p50 <{} ms p99 <{} ms\n",
               kind, q.requests, q.gets, FormatBytes(q.bytes_in), FormatBytes(q.bytes_out), q.retries, q.failures,
               q.p50_ms, q.p99_ms);
  }
  if (j.export_) {
    const control::ExportInfo& e = *j.export_;
    fmt::print("export      NFS {} on {}:{} (nfs-ganesha pid {}{})\n", e.path, e.bind, e.nfs_port, e.pid,
               e.running ? "" : ", exited");
  }
  for (auto& ov : j.overlays) {
    fmt::print("overlay     {}: {} data files, {}\n", ov.backup, ov.files, FormatBytes(ov.bytes));
  }
  for (auto& [name, deadline] : j.expiry) {
    fmt::print("expiry      {} at {}\n", name, ZonedLocalTime(deadline * 1000000000LL));
  }
  return 0;
}

int Discard(const std::string& mountpoint, const std::string& spec, bool as_json) {
  if (spec.find('@') == std::string::npos) {
    return Report(Status::Invalid("discard needs VM@BACKUP (a backup id or latest)"));
  }
  auto agent = ControlClient::ForMount(mountpoint);
  if (!agent.ok()) return Report(agent.status());
  auto reply = agent->Discard({spec});
  if (!reply.ok()) return Report(reply.status());
  if (as_json) {
    PrintJson(control::Encode(*reply));
    return 0;
  }
  fmt::print("discarded the overlay of {}\n", reply->backup);
  return 0;
}

// `expire MOUNTPOINT [VM@BACKUP DURATION|never]`: sets, removes or lists policies.
int Expire(const std::string& mountpoint, const std::string& spec, const std::string& when, bool as_json) {
  auto agent = ControlClient::ForMount(mountpoint);
  if (!agent.ok()) return Report(agent.status());
  if (spec.empty()) {
    auto stats = agent->Stats();
    if (!stats.ok()) return Report(stats.status());
    if (as_json) {
      PrintJson(nlohmann::json(stats->expiry));
      return 0;
    }
    if (stats->expiry.empty()) fmt::print("no backup copy of {} has an expiry policy\n", mountpoint);
    for (auto& [name, deadline] : stats->expiry) {
      fmt::print("{}  expires {}\n", name, ZonedLocalTime(deadline * 1000000000LL));
    }
    return 0;
  }
  if (spec.find('@') == std::string::npos) return Report(Status::Invalid("expire needs VM@BACKUP (a backup id or latest)"));
  if (when.empty()) return Report(Status::Invalid("expire needs a duration (such as 8h) or never"));
  int64_t after = 0;
  if (when != "never") {
    auto d = ParseDuration(when);
    if (!d.ok() || *d <= 0) return Report(Status::Invalid("expected a duration such as 30m, 8h or 2d, or never; got '" + when + "'"));
    after = *d;
  }
  auto reply = agent->Expire({spec, after});
  if (!reply.ok()) return Report(reply.status());
  if (as_json) {
    PrintJson(control::Encode(*reply));
    return 0;
  }
  if (reply->deadline == 0) fmt::print("{} no longer expires\n", reply->backup);
  else fmt::print("{} expires {}: its overlay is then discarded and its pre-staged chunks unpinned\n", reply->backup,
                  ZonedLocalTime(reply->deadline * 1000000000LL));
  return 0;
}

}  // namespace

void RegisterMountCommands(CLI::App& app, int* exit_code) {
  {
    auto* c = app.add_subcommand("mount", "Serve every backup copy of a repository through FUSE");
    auto o = std::make_shared<MountOptions>();
    auto cache_size = std::make_shared<std::string>("10G");
    auto expire_after = std::make_shared<std::string>();
    // The configuration file's settings are the defaults (tools/cli/config.h).
    const Config& cfg = CurrentConfig();
    if (cfg.mountpoint) o->mountpoint = *cfg.mountpoint;
    if (cfg.cache_size) *cache_size = *cfg.cache_size;
    if (cfg.metrics) o->metrics = *cfg.metrics;
    if (cfg.expire_after) *expire_after = *cfg.expire_after;
    if (cfg.log_level) o->log_level = *cfg.log_level;
    if (cfg.nfs_export) o->nfs_export = *cfg.nfs_export;
    if (cfg.allow_other) o->allow_other = *cfg.allow_other;
    if (cfg.read_only) o->read_only = *cfg.read_only;
    if (cfg.hydrate) o->hydrate = *cfg.hydrate;
    o->prestage = cfg.prestage;
    AddRepoArgument(c, &o->repo);
    c->add_option("MOUNTPOINT", o->mountpoint, "Empty directory to mount on (default: the configuration's mountpoint)")
        ->required(!cfg.mountpoint);
    c->add_option("--cache-dir", o->cache_dir, "Read-cache directory (fast local disk)");
    c->add_option("--cache-size", *cache_size, "Read-cache capacity")->capture_default_str();
    c->add_option("--state-dir", o->state_dir, "Where logs and overlays are kept");
    c->add_flag("--foreground,-f", o->foreground, "Stay in the foreground, log to stderr");
    c->add_flag("--nonempty", o->nonempty, "Mount on a directory that is not empty");
    c->add_flag("!--no-views", o->views,
                "Show only the backed-up files: no raw views, VMDK descriptors or configurations for the other hypervisor family");
    c->add_flag("--allow-other", o->allow_other,
                "Let other users (the hypervisor) in; implies default_permissions");
    c->add_option("--log-file", o->log_file, "Log file (default STATE_DIR/livemount.log)");
    c->add_option("--log-level", o->log_level, "error, warn, info or debug")->capture_default_str();
    c->add_option("--readahead", o->readahead_chunks, "Read-ahead window in chunks (0: off)")
        ->capture_default_str();
    c->add_option("--fetch-threads", o->fetch_threads, "Background fetch threads")
        ->capture_default_str();
    c->add_flag("--debug", o->debug, "Trace every FUSE request (with --foreground)");
    c->add_flag("--read-only", o->read_only, "No overlays: writes fail with EROFS");
    c->add_option("--prestage", o->prestage, "Pre-stage VM[@BACKUP] as soon as the mount is up (repeatable)");
    c->add_flag("--hydrate", o->hydrate, "After pre-staging, copy the rest of those backup copies too");
    c->add_option("--record-reads", o->record_reads, "Benchmarks: log every read (file, offset, length)");
    c->add_flag("--export", o->nfs_export, "Also serve the mount over NFS (see livemount export)");
    c->add_option("--metrics", o->metrics, "Serve Prometheus metrics at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9464)");
    c->add_option("--expire-after", *expire_after,
                  "Discard each backup copy's overlay and unpin it this long after it was first used (e.g. 8h)");
    AddExportOptions(c, &o->export_options);
    c->callback([=] {
      auto size = ParseSize(*cache_size);
      if (!size.ok()) {
        *exit_code = Report(size.status().Context("--cache-size"));
        return;
      }
      o->cache_size = *size;
      if (!expire_after->empty()) {
        auto d = ParseDuration(*expire_after);
        if (!d.ok() || *d <= 0) {
          *exit_code = Report(Status::Invalid("--expire-after: expected a duration such as 30m, 8h or 2d, got '" +
                                              *expire_after + "'"));
          return;
        }
        o->expire_after = *d;
      }
      o->env = CliEnv();
      // Asked now, at the terminal, not by the media agent after it went to the background.
      auto config = ReadRepoConfig(o->repo, o->env);
      if (config.ok() && config->encrypted) {
        auto pw = RepoPassword();
        if (!pw.ok()) {
          *exit_code = Report(pw.status());
          return;
        }
      }
      o->password = CliPasswordSource();
      *exit_code = RunMediaAgent(*o);
    });
  }
  {
    auto* c = app.add_subcommand("umount", "Unmount a live mount and stop its media agent");
    auto mp = std::make_shared<std::string>(CurrentConfig().mountpoint.value_or(""));
    auto lazy = std::make_shared<bool>(false);
    c->add_option("MOUNTPOINT", *mp, "Mountpoint (default: the configuration's mountpoint)")
        ->required(!CurrentConfig().mountpoint);
    c->add_flag("--lazy,-z", *lazy, "Detach now even if files are open");
    c->callback([=] { *exit_code = Umount(*mp, *lazy); });
  }
  {
    auto* c = app.add_subcommand("discard", "Drop the overlay (all writes) of one backup copy");
    auto mp = std::make_shared<std::string>();
    auto spec = std::make_shared<std::string>();
    c->add_option("MOUNTPOINT", *mp, "Mountpoint")->required();
    c->add_option("VM@BACKUP", *spec, "Backup copy (id or latest)")->required();
    auto as_json = std::make_shared<bool>(false);
    c->add_flag("--json", *as_json, "Machine-readable output");
    c->callback([=] { *exit_code = Discard(*mp, *spec, *as_json); });
  }
  {
    auto* c = app.add_subcommand("expire", "Set when a backup copy's overlay is discarded (a live mount policy)");
    auto mp = std::make_shared<std::string>();
    auto spec = std::make_shared<std::string>();
    auto when = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    c->add_option("MOUNTPOINT", *mp, "Mountpoint")->required();
    c->add_option("VM@BACKUP", *spec, "Backup copy (id or latest); without it, list the policies");
    c->add_option("DURATION", *when, "From now: 30m, 8h, 2d; or never (remove the policy)");
    c->add_flag("--json", *as_json, "Machine-readable output");
    c->callback([=] { *exit_code = Expire(*mp, *spec, *when, *as_json); });
  }
  {
    auto* c = app.add_subcommand("stats", "Counters of a live mount, or a repository's sizes, dedup and fill");
    auto mp = std::make_shared<std::string>();
    auto vm = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    c->add_option("MOUNTPOINT|REPO", *mp, "A live mount, or a repository")->required();
    c->add_option("VM", *vm, "With a repository: only this VM's copies");
    c->add_flag("--json", *as_json, "Machine-readable output");
    c->callback([=] {
      // A repository unless it is a mountpoint; anything else gets the mount's error.
      bool is_repo = IsObjectStoreLocation(*mp) || (!FindMount(AbsolutePath(*mp)) && PathExists(JoinPath(*mp, "config")));
      if (is_repo) *exit_code = RepoStatsCommand(*mp, *vm, *as_json);
      else if (!vm->empty()) *exit_code = Report(Status::Invalid("a VM is only given with a repository"));
      else *exit_code = Stats(*mp, *as_json);
    });
  }
}

}  // namespace lm::cli

// mount, umount, stats: the media agent.
#include <fmt/core.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "agent/control.h"
#include "agent/media_agent.h"
#include "agent/mount_table.h"
#include "store/repository.h"
#include "tools/cli/commands.h"

namespace lm::cli {

using nlohmann::json;

namespace {

// Runs a command without a shell; returns its exit status and captures stderr's first line.
int RunQuiet(const std::vector<std::string>& argv, std::string* err_line) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 2);
    ::close(pipefd[0]);
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    ::execvp(a[0], a.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  std::string err;
  char buf[512];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) err.append(buf, n);
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  *err_line = err.substr(0, err.find('\n'));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

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
    if (RunQuiet({"fusermount3", "-u", "-z", mountpoint}, &err) != 0) {
      return Report(Status::Busy("cannot clean up " + mountpoint + ": " + (err.empty() ? "fusermount3 failed" : err)));
    }
    fmt::print("cleaned up {}: its media agent was no longer running\n", mountpoint);
    return 0;
  }
  if (!pid.ok()) return Report(pid.status());
  // An NFS export holds files of the mount open: it goes first.
  if (auto name = ControlNameOf(mountpoint); name.ok()) {
    auto r = ControlRequest(*name, {{"cmd", "unexport"}}, 30000);
    if (r.ok() && CheckFields(*r, {{"was_exported", JsonKind::kBool}}, "the media agent").ok() &&
        (*r)["was_exported"].get<bool>())
      fmt::print("stopped the NFS export of {}\n", mountpoint);
  }
  std::string err;
  std::vector<std::string> argv = {"fusermount3", "-u"};
  if (lazy) argv.push_back("-z");
  argv.push_back(mountpoint);
  if (RunQuiet(argv, &err) != 0) {
    return Report(Status::Busy("cannot unmount " + mountpoint + ": " +
                               (err.empty() ? "fusermount3 failed" : err)));
  }
  // Wait for the daemon to flush its cache and exit.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (ProcessAlive(*pid)) {
    if (std::chrono::steady_clock::now() > deadline) {
      return Report(Status::Busy("unmounted " + mountpoint + ", but the media agent (pid " +
                                 std::to_string(*pid) + ") is still running"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  fmt::print("unmounted {}\n", mountpoint);
  return 0;
}

int Stats(const std::string& mountpoint, bool as_json) {
  auto name = ControlNameOf(mountpoint);
  if (!name.ok()) return Report(name.status());
  auto reply = ControlRequest(*name, {{"cmd", "stats"}});
  if (!reply.ok()) return Report(reply.status().Context(mountpoint));
  const json& j = *reply;
  if (as_json) {
    PrintJson(j);
    return 0;
  }
  Status valid = CheckFields(j, {{"cache.hits", JsonKind::kUInt}, {"cache.misses", JsonKind::kUInt},
                                 {"cache.bytes_served", JsonKind::kUInt}, {"cache.size", JsonKind::kUInt},
                                 {"cache.capacity", JsonKind::kUInt}, {"cache.entries", JsonKind::kUInt},
                                 {"cache.pinned", JsonKind::kUInt}, {"cache.evictions", JsonKind::kUInt},
                                 {"cache.corrupt_dropped", JsonKind::kUInt}, {"mountpoint", JsonKind::kString},
                                 {"pid", JsonKind::kInt}, {"repository", JsonKind::kString},
                                 {"reads.requests", JsonKind::kUInt}, {"reads.bytes", JsonKind::kUInt},
                                 {"reads.errors", JsonKind::kUInt}, {"repo.chunks_fetched", JsonKind::kUInt},
                                 {"repo.bytes_fetched", JsonKind::kUInt}, {"repo.errors", JsonKind::kUInt},
                                 {"readahead.queued", JsonKind::kUInt}, {"readahead.fetched", JsonKind::kUInt},
                                 {"prestage.chunks", JsonKind::kUInt}, {"writes.requests", JsonKind::kUInt},
                                 {"writes.bytes", JsonKind::kUInt}, {"export", JsonKind::kOptionalObject},
                                 {"overlays", JsonKind::kArray}},
                              "the media agent at " + mountpoint);
  if (valid.ok() && j.contains("export") && !j["export"].is_null()) {
    valid = CheckFields(j["export"], {{"path", JsonKind::kString}, {"bind", JsonKind::kString},
                                      {"nfs_port", JsonKind::kInt}, {"pid", JsonKind::kInt},
                                      {"running", JsonKind::kBool}},
                        "the media agent at " + mountpoint);
  }
  for (auto& ov : j["overlays"]) {
    if (!valid.ok()) break;
    valid = CheckFields(ov, {{"backup", JsonKind::kString}, {"files", JsonKind::kUInt}, {"bytes", JsonKind::kUInt}},
                        "the media agent at " + mountpoint);
  }
  if (!valid.ok()) return Report(valid);
  const json &c = j["cache"], &r = j["repo"], &rd = j["reads"];
  uint64_t hits = c["hits"], misses = c["misses"];
  fmt::print("mount       {} (pid {}) from {}\n", j["mountpoint"].get<std::string>(),
             j["pid"].get<int>(), j["repository"].get<std::string>());
  fmt::print("reads       {} requests, {}, {} errors\n", rd["requests"].get<uint64_t>(),
             FormatBytes(rd["bytes"]), rd["errors"].get<uint64_t>());
  fmt::print("cache       {} hits, {} misses ({:.1f}% hits), {} served\n", hits, misses,
             hits + misses ? 100.0 * hits / (hits + misses) : 0.0, FormatBytes(c["bytes_served"]));
  fmt::print("            {} of {} used, {} chunks, {} pinned, {} evictions, {} damaged dropped\n",
             FormatBytes(c["size"]), FormatBytes(c["capacity"]), c["entries"].get<uint64_t>(),
             c["pinned"].get<uint64_t>(), c["evictions"].get<uint64_t>(),
             c["corrupt_dropped"].get<uint64_t>());
  fmt::print("repository  {} chunks fetched, {} read, {} errors\n",
             r["chunks_fetched"].get<uint64_t>(), FormatBytes(r["bytes_fetched"]),
             r["errors"].get<uint64_t>());
  fmt::print("read-ahead  {} queued, {} fetched\n", j["readahead"]["queued"].get<uint64_t>(),
             j["readahead"]["fetched"].get<uint64_t>());
  fmt::print("prestage    {} chunks\n", j["prestage"]["chunks"].get<uint64_t>());
  fmt::print("writes      {} requests, {}\n", j["writes"]["requests"].get<uint64_t>(),
             FormatBytes(j["writes"]["bytes"]));
  if (j.contains("export") && !j["export"].is_null()) {
    const json& e = j["export"];
    fmt::print("export      NFS {} on {}:{} (nfs-ganesha pid {}{})\n", e["path"].get<std::string>(),
               e["bind"].get<std::string>(), e["nfs_port"].get<int>(), e["pid"].get<int>(),
               e["running"].get<bool>() ? "" : ", exited");
  }
  for (auto& ov : j["overlays"]) {
    fmt::print("overlay     {}: {} data files, {}\n", ov["backup"].get<std::string>(),
               ov["files"].get<uint64_t>(), FormatBytes(ov["bytes"]));
  }
  return 0;
}

int Discard(const std::string& mountpoint, const std::string& spec, bool as_json) {
  if (spec.find('@') == std::string::npos) {
    return Report(Status::Invalid("discard needs VM@BACKUP (a backup id or latest)"));
  }
  auto name = ControlNameOf(mountpoint);
  if (!name.ok()) return Report(name.status());
  auto reply = ControlRequest(*name, {{"cmd", "discard"}, {"backup", spec}});
  if (!reply.ok()) return Report(reply.status());
  Status valid = CheckFields(*reply, {{"backup", JsonKind::kString}}, "the media agent at " + mountpoint);
  if (!valid.ok()) return Report(valid);
  if (as_json) {
    PrintJson(*reply);
    return 0;
  }
  fmt::print("discarded the overlay of {}\n", (*reply)["backup"].get<std::string>());
  return 0;
}

}  // namespace

void RegisterMountCommands(CLI::App& app, int* exit_code) {
  {
    auto* c = app.add_subcommand("mount", "Serve every backup copy of a repository through FUSE");
    auto o = std::make_shared<MountOptions>();
    auto cache_size = std::make_shared<std::string>("10G");
    c->add_option("REPO", o->repo, "Repository")->required();
    c->add_option("MOUNTPOINT", o->mountpoint, "Empty directory to mount on")->required();
    c->add_option("--cache-dir", o->cache_dir, "Read-cache directory (fast local disk)");
    c->add_option("--cache-size", *cache_size, "Read-cache capacity")->capture_default_str();
    c->add_option("--state-dir", o->state_dir, "Where logs and overlays are kept");
    c->add_flag("--foreground,-f", o->foreground, "Stay in the foreground, log to stderr");
    c->add_flag("--nonempty", o->nonempty, "Mount on a directory that is not empty");
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
    AddExportOptions(c, &o->export_options);
    c->callback([=] {
      auto size = ParseSize(*cache_size);
      if (!size.ok()) {
        *exit_code = Report(size.status().Context("--cache-size"));
        return;
      }
      o->cache_size = *size;
      o->env = CliEnv();
      *exit_code = RunMediaAgent(*o);
    });
  }
  {
    auto* c = app.add_subcommand("umount", "Unmount a live mount and stop its media agent");
    auto mp = std::make_shared<std::string>();
    auto lazy = std::make_shared<bool>(false);
    c->add_option("MOUNTPOINT", *mp, "Mountpoint")->required();
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
    auto* c = app.add_subcommand("stats", "Cache and repository counters of a live mount");
    auto mp = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    c->add_option("MOUNTPOINT", *mp, "Mountpoint")->required();
    c->add_flag("--json", *as_json, "Machine-readable output");
    c->callback([=] { *exit_code = Stats(*mp, *as_json); });
  }
}

}  // namespace lm::cli

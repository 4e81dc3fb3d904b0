// init, backup, list, verify, restore: the repository and the data agent.
#include <fmt/core.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include <map>

#include "agent/media_agent.h"
#include "fs/overlay_store.h"
#include "store/backup.h"
#include "store/verify.h"
#include "guest/view.h"
#include "profile/profile.h"
#include "agent/control_client.h"
#include "tools/cli/commands.h"
#include "tools/cli/from_mount.h"
#include "tools/cli/password.h"
#include "tools/cli/progress.h"
#include "base/env_wrapper.h"
#include "base/json_bytes.h"
#include "base/state_layout.h"

namespace lm::cli {

using nlohmann::json;

Env* CliEnv() {
  // Benchmarks and tests simulate slow secondary storage: every read of a pack first
  // sleeps LIVEMOUNT_REPO_LATENCY_MS (at most 60 s).
  static Env* env = [] {
    const char* lat = std::getenv("LIVEMOUNT_REPO_LATENCY_MS");
    unsigned long ms = lat ? std::min(std::strtoul(lat, nullptr, 10), 60000ul) : 0;
    return ms ? static_cast<Env*>(new DelayedReadEnv(Env::Default(), static_cast<uint32_t>(ms), "/packs/"))
              : Env::Default();
  }();
  return env;
}

Result<std::unique_ptr<Repository>> OpenRepo(const std::string& path, const std::string& cache_dir) {
  RepoOptions o;
  o.env = CliEnv();
  o.password = CliPasswordSource();
  LM_ASSIGN_OR_RETURN(o.chunk_table, ChunkIndexFromEnvironment(cache_dir.empty() ? DefaultCacheDir() : cache_dir));
  return Repository::Open(path, o);
}

CLI::Option* AddRepoArgument(CLI::App* c, std::string* repo, bool existing) {
  auto* o = c->add_option("REPO", *repo,
                          "Repository: a directory or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] "
                          "(default: $LIVEMOUNT_REPOSITORY)")
                ->required()
                ->envname("LIVEMOUNT_REPOSITORY");
  const char* fallback = std::getenv("LIVEMOUNT_REPOSITORY");
  if (existing && fallback && *fallback) {
    // With a default repository REPO may be left out: an argument that names no
    // repository is then taken as the next one ("list VM", "mount MOUNTPOINT"). The
    // default itself passes (opening it says what is wrong with it).
    std::string fallback_location = fallback;
    o->check(CLI::Validator(
        [fallback_location](std::string& s) -> std::string {
          if (s == fallback_location || IsObjectStoreLocation(s) || PathExists(JoinPath(s, "config"))) return "";
          return "'" + s + "' is not a livemount repository";
        },
        "REPO"));
    c->validate_positionals();
  }
  return o;
}

void PrintJson(const nlohmann::json& j) {
  fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

int Report(const Status& s) {
  if (s.ok()) return 0;
  fmt::print(stderr, "livemount: {}\n", s.message());
  return 1;
}

// ISO 8601 with the zone: local time for people ("2026-11-26 05:40:12+01:00"), UTC with
// a Z for scripts ("2026-11-26T04:40:12Z"), as the backup ids are.
std::string ZonedLocalTime(int64_t ns) {
  time_t t = static_cast<time_t>(ns / 1000000000);
  struct tm tm;
  localtime_r(&t, &tm);
  char buf[40], zone[8];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  strftime(zone, sizeof zone, "%z", &tm);  // +0100
  std::string z = zone;
  if (z.size() == 5) z.insert(3, ":");
  return std::string(buf) + (z == "+00:00" ? "Z" : z);
}

namespace {

std::string UtcTime(int64_t ns) {
  time_t t = static_cast<time_t>(ns / 1000000000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[40];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int Init(const std::string& repo, const std::string& chunk_size, const std::string& encryption) {
  if (repo.empty()) return Report(Status::Invalid("init: no repository path given"));
  auto cs = ParseSize(chunk_size);
  if (!cs.ok()) return Report(cs.status().Context("--chunk-size"));
  if (*cs < kMinChunkSize || *cs > kMaxChunkSize || (*cs & (*cs - 1)) != 0) {
    return Report(Status::Invalid("--chunk-size " + chunk_size + " must be a power of two from 4K to 16M"));
  }
  InitOptions o;
  o.chunk_size = static_cast<uint32_t>(*cs);
  o.encrypted = encryption != "none";
  if (o.encrypted) o.password = [] { return NewPassword("", true); };
  Status s = Repository::Init(repo, o, CliEnv());
  if (!s.ok()) return Report(s);
  if (!o.encrypted) {
    fmt::print(stderr, "livemount: warning: {} is not encrypted: whoever can read it can read every VM disk "
                       "backed up into it\n", repo);
  }
  fmt::print("initialized repository {} (chunk size {}, {})\n", repo, FormatBytes(*cs),
             o.encrypted ? "encrypted with AES-256-GCM" : "not encrypted");
  if (o.encrypted) {
    fmt::print("the password is the only way into this repository: losing it loses every backup in it\n");
  }
  return 0;
}

// backup --select-files: the guest paths resolve against the VM directory's own disks
// (the bytes about to be backed up), into a profile the backup copy carries.
Status ProfileForSelectedFiles(BackupOptions* o, const std::vector<std::string>& paths) {
  Profile base;
  base.vm = o->vm;
  if (!o->profile_path.empty()) {
    LM_ASSIGN_OR_RETURN(base, LoadProfile(CliEnv(), o->profile_path));
  }
  LM_ASSIGN_OR_RETURN(auto view, GuestView::OpenDirectory(CliEnv(), o->vmdir));
  uint64_t files = 0, bytes = 0;
  LM_ASSIGN_OR_RETURN(Profile p, AddGuestFiles(std::move(base), *view, paths, &files, &bytes));
  o->profile_json = EncodeProfile(p);
  fmt::print("selected {} guest file{} ({} of image ranges) for the backup copy's profile\n", files,
             files == 1 ? "" : "s", FormatBytes(bytes));
  return Status::Ok();
}

// Exit status of a backup that made its copy but skipped entries or saw files change.
constexpr int kExitIncomplete = 3;

int Backup(const std::string& repo_path, BackupOptions o, const std::vector<std::string>& select_files,
           bool as_json, const std::string& cache_dir, const std::vector<std::string>& from_mount) {
  auto repo = OpenRepo(repo_path, cache_dir);
  if (!repo.ok()) return Report(repo.status());
  FromMountCounts from;
  if (!from_mount.empty()) {
    Status s = PrepareBackupFromMount(**repo, from_mount[0], from_mount[1], &o, &from);
    if (!s.ok()) return Report(s.Context("backup --from-mount"));
  }
  if (!(*repo)->encrypted() && PasswordGiven()) {
    // Someone who can write the repository could have replaced an encrypted config with
    // an unencrypted one: never write a VM's disks in the clear when a password was meant.
    return Report(Status::Denied(repo_path + ": the repository is not encrypted, yet a password was given; "
                                 "refusing to back up into it in the clear (unset the password to proceed)"));
  }
  if (!o.profile_path.empty()) {
    // Checked now, not when a prestage needs it: a backup copy never carries a bad profile.
    auto p = LoadProfile(CliEnv(), o.profile_path);
    if (!p.ok()) return Report(p.status().Context("--profile"));
    o.profile_json = EncodeProfile(*p);
  }
  if (!select_files.empty()) {
    Status s = ProfileForSelectedFiles(&o, select_files);
    if (!s.ok()) return Report(s.Context("--select-files"));
  }
  ProgressBar bar("backup " + o.vm);
  o.progress = [&](const BackupProgress& p) {
    bar.Update(p.done_bytes, p.total_bytes, p.current_file);
  };
  auto r = RunBackup(**repo, o);
  bar.Done();
  if (!r.ok()) return Report(r.status().Context("backup " + o.vm));
  const BackupManifest& m = r->manifest;
  size_t nfiles = 0;
  for (auto& f : m.files) nfiles += f.type != FileType::kDir;
  double dedup = m.new_raw_bytes ? static_cast<double>(m.logical_bytes) / m.new_raw_bytes : 0;
  double mbs = m.seconds > 0 ? m.logical_bytes / 1e6 / m.seconds : 0;
  int exit = r->warnings.empty() ? 0 : kExitIncomplete;
  if (as_json) {
    json j = {{"vm", m.vm},
              {"id", m.id},
              {"backup", m.vm + "@" + m.id},
              {"time", UtcTime(m.time_ns)},
              {"files", nfiles},
              {"logical_bytes", m.logical_bytes},
              {"new_bytes", m.new_raw_bytes},
              {"stored_bytes", m.stored_bytes},
              {"seconds", m.seconds},
              {"complete", r->warnings.empty()},
              {"warnings", json::array()},
              {"skipped_special", json::array()},
              {"excluded", json::array()}};
    for (auto& w : r->warnings) j["warnings"].push_back(LossyUtf8(w));
    for (auto& x : r->skipped) j["skipped_special"].push_back(LossyUtf8(x));
    for (auto& x : r->excluded) j["excluded"].push_back(LossyUtf8(x));
    if (!from.from.empty()) {
      j["from_mount"] = {{"backup", from.from}, {"chunks_reused", from.reused.load()}, {"chunks_read", from.read.load()}};
    }
    PrintJson(j);
    return exit;
  }
  for (auto& x : r->skipped) fmt::print(stderr, "livemount: note: skipped special file {}\n", LossyUtf8(x));
  for (auto& w : r->warnings) fmt::print(stderr, "livemount: warning: {}\n", LossyUtf8(w));
  fmt::print("backup {}@{}: {} files, {} read, {} new, {} stored, dedup {}, {:.1f} s, {:.0f} MB/s\n",
             m.vm, m.id, nfiles, FormatBytes(m.logical_bytes), FormatBytes(m.new_raw_bytes),
             FormatBytes(m.stored_bytes),
             m.new_raw_bytes ? fmt::format("{:.1f}x", dedup) : std::string("all"), m.seconds,
             mbs);
  if (!from.from.empty()) {
    fmt::print("   from the live copy {}: {} unchanged chunks taken without reading them, {} read through the mount\n",
               from.from, from.reused.load(), from.read.load());
  }
  if (exit) {
    fmt::print(stderr, "livemount: backup {}@{} is incomplete: {} entr{} skipped or changed while read (above)\n",
               m.vm, m.id, r->warnings.size(), r->warnings.size() == 1 ? "y" : "ies");
  }
  return exit;
}

int List(const std::string& repo_path, const std::string& only_vm, bool as_json,
         std::string state_dir) {
  auto repo = OpenRepo(repo_path);
  if (!repo.ok()) return Report(repo.status());
  if (state_dir.empty()) state_dir = DefaultStateDir();
  std::map<std::string, OverlayInfo> overlays;
  if (auto scan = OverlayStore::Scan(state_dir); scan.ok()) {
    for (auto& o : *scan) overlays[o.backup.Name()] = o;
  }
  std::vector<std::string> vms;
  if (!only_vm.empty()) {
    vms.push_back(only_vm);
  } else {
    auto all = (*repo)->ListVms();
    if (!all.ok()) return Report(all.status());
    vms = *all;
  }
  json out = {{"repository", repo_path}, {"chunk_size", (*repo)->chunk_size()}, {"vms", json::array()}};
  std::vector<std::vector<std::string>> rows;
  for (const std::string& vm : vms) {
    auto ids = (*repo)->ListBackupIds(vm);
    if (!ids.ok()) return Report(ids.status());
    json jvm = {{"name", vm}, {"backups", json::array()}};
    for (const std::string& id : *ids) {
      auto m = (*repo)->LoadManifest(BackupRef{vm, id});
      if (!m.ok()) {
        fmt::print(stderr, "livemount: {}\n", m.status().message());
        rows.push_back({vm, id, "(damaged)", "", "", "", ""});
        jvm["backups"].push_back({{"id", id}, {"error", m.status().message()}});
        continue;
      }
      size_t nfiles = 0;
      for (auto& f : m->files) nfiles += f.type != FileType::kDir;
      auto ov = overlays.find(vm + "@" + id);
      std::string ov_text = ov == overlays.end() ? "-" : FormatBytes(ov->second.bytes);
      jvm["backups"].push_back({{"id", id},
                                {"overlay", ov == overlays.end()
                                                ? json(nullptr)
                                                : json({{"files", ov->second.entries},
                                                        {"bytes", ov->second.bytes}})},
                                {"time", UtcTime(m->time_ns)},
                                {"time_local", ZonedLocalTime(m->time_ns)},
                                {"time_ns", m->time_ns},
                                {"logical_bytes", m->logical_bytes},
                                {"stored_bytes", m->stored_bytes},
                                {"files", nfiles},
                                {"has_profile", m->has_profile},
                                {"source", LossyUtf8(m->source)}});
      rows.push_back({vm, id, ZonedLocalTime(m->time_ns), std::to_string(nfiles),
                      FormatBytes(m->logical_bytes), FormatBytes(m->stored_bytes), ov_text});
    }
    out["vms"].push_back(std::move(jvm));
  }
  if (as_json) {
    PrintJson(out);
    return 0;
  }
  std::vector<std::string> head = {"VM", "BACKUP", "TIME", "FILES", "SIZE", "STORED", "OVERLAY"};
  std::vector<size_t> w(head.size());
  for (size_t i = 0; i < head.size(); i++) w[i] = head[i].size();
  for (auto& r : rows)
    for (size_t i = 0; i < r.size(); i++) w[i] = std::max(w[i], r[i].size());
  auto print_row = [&](const std::vector<std::string>& r) {
    std::string line;
    for (size_t i = 0; i < r.size(); i++) line += fmt::format("{:<{}}  ", r[i], w[i]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print("{}\n", line);
  };
  print_row(head);
  for (auto& r : rows) print_row(r);
  return 0;
}

int Verify(const std::string& repo_path, bool read_data, bool as_json) {
  auto repo = OpenRepo(repo_path);
  if (!repo.ok()) return Report(repo.status());
  ProgressBar bar("verify");
  VerifyOptions o;
  o.read_data = read_data;
  o.progress = [&](uint64_t done, uint64_t total) { bar.Update(done, total); };
  auto r = RunVerify(**repo, o);
  bar.Done();
  if (!r.ok()) return Report(r.status());
  if (as_json) {
    json damaged = json::array();
    for (auto& d : r->damaged_chunks) {
      damaged.push_back({{"chunk", d.digest.Hex()}, {"pack", d.pack}, {"error", d.error},
                         {"used_by", d.users}});
    }
    json j = {{"ok", r->ok()},           {"read_data", read_data},
              {"packs", r->packs},       {"index_files", r->index_files},
              {"backups", r->backups},   {"chunks", r->chunks},
              {"chunks_read", r->chunks_read}, {"bytes_read", r->bytes_read},
              {"seconds", r->seconds},   {"errors", r->errors},
              {"damaged_chunks", damaged}, {"notes", r->notes},
              {"unreferenced_chunks", r->unreferenced_chunks}, {"unreferenced_bytes", r->unreferenced_bytes}};
    PrintJson(j);
  } else {
    for (auto& n : r->notes) fmt::print("note: {}\n", n);
    if (r->unreferenced_chunks) {
      fmt::print("note: {} chunks ({}) are used by no backup copy; livemount prune reclaims them\n",
                 r->unreferenced_chunks, FormatBytes(r->unreferenced_bytes));
    }
    for (auto& e : r->errors) fmt::print("error: {}\n", e);
    for (auto& d : r->damaged_chunks) {
      fmt::print("damaged chunk {}{}: {}\n", d.digest.Hex(),
                 d.pack.empty() ? "" : " in pack " + d.pack, d.error);
      for (auto& u : d.users) fmt::print("  used by {}\n", u);
    }
    fmt::print("{}: {} backups, {} packs, {} index files, {} chunks{}; {} errors, {} damaged "
               "chunks ({:.1f} s{})\n",
               r->ok() ? "ok" : "DAMAGED", r->backups, r->packs, r->index_files, r->chunks,
               read_data ? fmt::format(", {} read", FormatBytes(r->bytes_read)) : "",
               r->errors.size(), r->damaged_chunks.size(), r->seconds,
               read_data && r->seconds > 0
                   ? fmt::format(", {:.0f} MB/s", r->bytes_read / 1e6 / r->seconds)
                   : "");
  }
  if (!r->ok()) {
    fmt::print(stderr, "livemount: verify {}: repository is damaged ({} errors, {} damaged chunks)\n",
               repo_path, r->errors.size(), r->damaged_chunks.size());
    return 1;
  }
  return 0;
}

}  // namespace

void RegisterRepoCommands(CLI::App& app, int* exit_code) {
  {
    auto* c = app.add_subcommand("init", "Create a backup repository");
    auto repo = std::make_shared<std::string>();
    auto cs = std::make_shared<std::string>("128K");
    AddRepoArgument(c, repo.get(), /*existing=*/false);
    c->add_option("--chunk-size", *cs, "Chunk size, a power of two from 4K to 16M")
        ->capture_default_str();
    auto enc = std::make_shared<std::string>("aes-256-gcm");
    c->add_option("--encryption", *enc, "aes-256-gcm (with a password), or none")
        ->check(CLI::IsMember({"aes-256-gcm", "none"}))
        ->capture_default_str();
    c->callback([=] { *exit_code = Init(*repo, *cs, *enc); });
  }
  {
    auto* c = app.add_subcommand("backup", "Back up a VM directory as a new backup copy");
    auto repo = std::make_shared<std::string>();
    auto o = std::make_shared<BackupOptions>();
    auto from_mount = std::make_shared<std::vector<std::string>>();
    auto* repo_arg = AddRepoArgument(c, repo);
    auto* vmdir = c->add_option("VMDIR", o->vmdir, "The VM's directory");
    c->add_option("--vm", o->vm, "VM name")->required();
    auto* from = c->add_option("--from-mount", *from_mount,
                               "MOUNTPOINT VM@BACKUP: a live copy (backup + overlay) becomes the new copy; only "
                               "what the VM wrote is read")
                     ->expected(2);
    from->excludes(vmdir);
    c->add_option("--profile", o->profile_path, "Profile JSON to attach to the backup copy");
    c->add_option("--compression-level", o->compression_level, "zstd level 1-19, 0 for none")
        ->capture_default_str();
    c->add_option("--threads", o->threads, "Worker threads (0: one per core, at most 256)");
    auto select = std::make_shared<std::vector<std::string>>();
    c->add_option("--select-files", *select,
                  "Guest paths (/sda1/var/lib/db) whose blocks go into the backup copy's profile");
    c->add_option("--exclude", o->excludes,
                  "Leave out entries whose path or name matches this shell pattern (repeatable)");
    auto as_json = std::make_shared<bool>(false);
    c->add_flag("--json", *as_json, "Machine-readable output (the new backup id among it)");
    auto cache = std::make_shared<std::string>();
    c->add_option("--cache-dir", *cache, "Where the repository's chunk index is kept (default: $LIVEMOUNT_CACHE_DIR, "
                                         "/var/cache/livemount as root, ~/.cache/livemount)");
    repo_arg->required(false);  // with --from-mount, the mount's repository
    c->callback([=] {
      if (from_mount->empty() && (repo->empty() || o->vmdir.empty())) {
        *exit_code = Report(Status::Invalid("backup needs REPO and VMDIR (or --from-mount MOUNTPOINT VM@BACKUP)"));
        return;
      }
      std::string location = *repo;
      if (!from_mount->empty() && location.empty()) {
        // The repository the mount serves.
        auto agent = ControlClient::ForMount((*from_mount)[0]);
        auto stats = agent.ok() ? agent->Stats() : Result<control::MountStats>(agent.status());
        if (!stats.ok()) {
          *exit_code = Report(stats.status().Context("backup --from-mount"));
          return;
        }
        location = stats->repository;
      }
      *exit_code = Backup(location, *o, *select, *as_json, *cache, *from_mount);
    });
  }
  {
    auto* c = app.add_subcommand("list", "List VMs and their backup copies");
    auto repo = std::make_shared<std::string>();
    auto vm = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    AddRepoArgument(c, repo);
    c->add_option("VM", *vm, "Only this VM");
    c->add_flag("--json", *as_json, "Machine-readable output");
    auto state = std::make_shared<std::string>();
    c->add_option("--state-dir", *state, "Media agent state directory, for overlay sizes");
    c->callback([=] { *exit_code = List(*repo, *vm, *as_json, *state); });
  }
  {
    auto* c = app.add_subcommand("verify", "Check the repository for damage");
    auto repo = std::make_shared<std::string>();
    auto read_data = std::make_shared<bool>(false);
    auto as_json = std::make_shared<bool>(false);
    AddRepoArgument(c, repo);
    c->add_flag("--read-data", *read_data, "Read and check every chunk");
    c->add_flag("--json", *as_json, "Machine-readable output");
    c->callback([=] { *exit_code = Verify(*repo, *read_data, *as_json); });
  }
}

}  // namespace lm::cli

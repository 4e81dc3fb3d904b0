// init, backup, list, verify, restore: the repository and the data agent.
#include <fmt/core.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include <map>

#include "fs/media_agent.h"
#include "fs/overlay_store.h"
#include "store/backup.h"
#include "store/restore.h"
#include "store/verify.h"
#include "profile/guest_view.h"
#include "profile/profile.h"
#include "tools/cli/commands.h"
#include "tools/cli/progress.h"

namespace lm::cli {

using nlohmann::json;

int Report(const Status& s) {
  if (s.ok()) return 0;
  fmt::print(stderr, "livemount: {}\n", s.message());
  return 1;
}

namespace {

std::string LocalTime(int64_t ns) {
  time_t t = static_cast<time_t>(ns / 1000000000);
  struct tm tm;
  localtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

int Init(const std::string& repo, const std::string& chunk_size) {
  auto cs = ParseSize(chunk_size);
  if (!cs.ok()) return Report(cs.status().Context("--chunk-size"));
  Status s = Repository::Init(repo, static_cast<uint32_t>(*cs));
  if (!s.ok()) return Report(s);
  fmt::print("initialized repository {} (chunk size {})\n", repo, FormatBytes(*cs));
  return 0;
}

// backup --select-files: the guest paths resolve against the VM directory's own disks
// (the bytes about to be backed up), into a profile the backup copy carries.
Status ProfileForSelectedFiles(BackupOptions* o, const std::vector<std::string>& paths) {
  Profile base;
  base.vm = o->vm;
  if (!o->profile_path.empty()) {
    LM_ASSIGN_OR_RETURN(base, LoadProfile(o->profile_path));
  }
  LM_ASSIGN_OR_RETURN(auto view, GuestView::OpenDirectory(o->vmdir));
  uint64_t files = 0, bytes = 0;
  LM_ASSIGN_OR_RETURN(Profile p, AddGuestFiles(std::move(base), *view, paths, &files, &bytes));
  o->profile_json = EncodeProfile(p);
  fmt::print("selected {} guest file{} ({} of image ranges) for the backup copy's profile\n", files,
             files == 1 ? "" : "s", FormatBytes(bytes));
  return Status::Ok();
}

int Backup(const std::string& repo_path, BackupOptions o, const std::vector<std::string>& select_files) {
  auto repo = Repository::Open(repo_path);
  if (!repo.ok()) return Report(repo.status());
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
  for (auto& s : r->skipped) fmt::print(stderr, "livemount: skipped special file {}\n", s);
  size_t nfiles = 0;
  for (auto& f : m.files) nfiles += f.type != FileType::kDir;
  double dedup = m.new_raw_bytes ? static_cast<double>(m.logical_bytes) / m.new_raw_bytes : 0;
  double mbs = m.seconds > 0 ? m.logical_bytes / 1e6 / m.seconds : 0;
  fmt::print("backup {}@{}: {} files, {} read, {} new, {} stored, dedup {}, {:.1f} s, {:.0f} MB/s\n",
             m.vm, m.id, nfiles, FormatBytes(m.logical_bytes), FormatBytes(m.new_raw_bytes),
             FormatBytes(m.stored_bytes),
             m.new_raw_bytes ? fmt::format("{:.1f}x", dedup) : std::string("all"), m.seconds,
             mbs);
  return 0;
}

int List(const std::string& repo_path, const std::string& only_vm, bool as_json,
         std::string state_dir) {
  auto repo = Repository::Open(repo_path);
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
                                {"time", LocalTime(m->time_ns)},
                                {"time_ns", m->time_ns},
                                {"logical_bytes", m->logical_bytes},
                                {"stored_bytes", m->stored_bytes},
                                {"files", nfiles},
                                {"has_profile", m->has_profile},
                                {"source", m->source}});
      rows.push_back({vm, id, LocalTime(m->time_ns), std::to_string(nfiles),
                      FormatBytes(m->logical_bytes), FormatBytes(m->stored_bytes), ov_text});
    }
    out["vms"].push_back(std::move(jvm));
  }
  if (as_json) {
    fmt::print("{}\n", out.dump(2));
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
  auto repo = Repository::Open(repo_path);
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
              {"damaged_chunks", damaged}, {"notes", r->notes}};
    fmt::print("{}\n", j.dump(2));
  } else {
    for (auto& n : r->notes) fmt::print("note: {}\n", n);
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

int Restore(const std::string& repo_path, const std::string& spec, const std::string& dest,
            bool no_sync) {
  auto repo = Repository::Open(repo_path);
  if (!repo.ok()) return Report(repo.status());
  auto ref = (*repo)->ResolveSpec(spec);
  if (!ref.ok()) return Report(ref.status());
  ProgressBar bar("restore " + ref->Name());
  RestoreOptions o;
  o.sync = !no_sync;
  o.progress = [&](const RestoreProgress& p) { bar.Update(p.done_bytes, p.total_bytes, p.current_file); };
  auto r = RunRestore(**repo, *ref, dest, o);
  bar.Done();
  if (!r.ok()) return Report(r.status());
  fmt::print("restored {} to {}: {} files, {} dirs, {} symlinks, {}, {:.1f} s, {:.0f} MB/s\n",
             ref->Name(), dest, r->files, r->dirs, r->symlinks, FormatBytes(r->bytes), r->seconds,
             r->seconds > 0 ? r->bytes / 1e6 / r->seconds : 0.0);
  return 0;
}

}  // namespace

void RegisterRepoCommands(CLI::App& app, int* exit_code) {
  {
    auto* c = app.add_subcommand("init", "Create a backup repository");
    auto repo = std::make_shared<std::string>();
    auto cs = std::make_shared<std::string>("128K");
    c->add_option("REPO", *repo, "Repository directory (new or empty)")->required();
    c->add_option("--chunk-size", *cs, "Chunk size, a power of two from 4K to 16M")
        ->capture_default_str();
    c->callback([=] { *exit_code = Init(*repo, *cs); });
  }
  {
    auto* c = app.add_subcommand("backup", "Back up a VM directory as a new backup copy");
    auto repo = std::make_shared<std::string>();
    auto o = std::make_shared<BackupOptions>();
    c->add_option("REPO", *repo, "Repository")->required();
    c->add_option("VMDIR", o->vmdir, "The VM's directory")->required();
    c->add_option("--vm", o->vm, "VM name")->required();
    c->add_option("--profile", o->profile_path, "Profile JSON to attach to the backup copy");
    c->add_option("--compression-level", o->compression_level, "zstd level 1-19, 0 for none")
        ->capture_default_str();
    c->add_option("--threads", o->threads, "Worker threads (0: one per core)");
    auto select = std::make_shared<std::vector<std::string>>();
    c->add_option("--select-files", *select,
                  "Guest paths (/sda1/var/lib/db) whose blocks go into the backup copy's profile");
    c->callback([=] { *exit_code = Backup(*repo, *o, *select); });
  }
  {
    auto* c = app.add_subcommand("list", "List VMs and their backup copies");
    auto repo = std::make_shared<std::string>();
    auto vm = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    c->add_option("REPO", *repo, "Repository")->required();
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
    c->add_option("REPO", *repo, "Repository")->required();
    c->add_flag("--read-data", *read_data, "Read and check every chunk");
    c->add_flag("--json", *as_json, "Machine-readable output");
    c->callback([=] { *exit_code = Verify(*repo, *read_data, *as_json); });
  }
  {
    auto* c = app.add_subcommand("restore", "Restore a backup copy to a directory");
    auto repo = std::make_shared<std::string>();
    auto spec = std::make_shared<std::string>();
    auto dest = std::make_shared<std::string>();
    c->add_option("REPO", *repo, "Repository")->required();
    c->add_option("VM@BACKUP", *spec, "VM, optionally @BACKUP (default latest)")->required();
    c->add_option("DESTDIR", *dest, "Destination directory")->required();
    auto no_sync = std::make_shared<bool>(false);
    c->add_flag("--no-sync", *no_sync, "Do not fsync restored files (faster, not crash-safe)");
    c->callback([=] { *exit_code = Restore(*repo, *spec, *dest, *no_sync); });
  }
}

}  // namespace lm::cli

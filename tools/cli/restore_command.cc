// restore: a backup copy into a directory, optionally with the overlay a live mount gave it.
#include <fmt/core.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "agent/control_client.h"
#include "agent/media_agent.h"
#include "base/json_bytes.h"
#include "store/restore.h"
#include "tools/cli/commands.h"
#include "tools/cli/progress.h"
#include "tools/cli/restore_overlay.h"

namespace lm::cli {

using nlohmann::json;

namespace {

struct RestoreArgs {
  std::string repo, spec, dest, cache_dir, state_dir;
  bool no_sync = false, overwrite = false, continue_on_error = false, json = false, with_overlay = false;
};

int Restore(const RestoreArgs& a) {
  // With the overlay: a media agent serves the state directory (the running one, or one of
  // our own started now, before this process has threads) and syncs the copy's overlay.
  std::unique_ptr<LiveCopySource> live;
  control::ChangesReply changes;
  if (a.with_overlay) {
    std::string state_dir = a.state_dir.empty() ? DefaultStateDir() : a.state_dir;
    auto src = LiveCopySource::Find(a.repo, state_dir);
    if (!src.ok()) return Report(src.status().Context("restore --with-overlay"));
    live = std::move(src).value();
    auto agent = ControlClient::ForMount(live->mountpoint());
    auto c = agent.ok() ? agent->Changes({a.spec, true}) : Result<control::ChangesReply>(agent.status());
    if (!c.ok()) return Report(c.status().Context("restore --with-overlay"));
    changes = std::move(c).value();
  }
  auto repo = OpenRepo(a.repo, a.cache_dir);
  if (!repo.ok()) return Report(repo.status());
  auto ref = (*repo)->ResolveSpec(live ? changes.backup : a.spec);
  if (!ref.ok()) return Report(ref.status());
  ProgressBar bar("restore " + ref->Name());
  RestoreOptions o;
  o.sync = !a.no_sync;
  o.overwrite = a.overwrite;
  o.continue_on_error = a.continue_on_error;
  o.progress = [&](const RestoreProgress& p) { bar.Update(p.done_bytes, p.total_bytes, p.current_file); };
  auto r = RunRestore(**repo, *ref, a.dest, o);
  bar.Done();
  if (!r.ok()) return Report(r.status());
  OverlayApplied applied;
  if (live) {
    auto manifest = (*repo)->LoadManifest(*ref);
    if (!manifest.ok()) return Report(manifest.status());
    std::string copy_dir = JoinPath(JoinPath(live->mountpoint(), ref->vm), ref->id);
    Status s = ApplyOverlay(copy_dir, changes, *manifest, a.dest, o.sync, &applied);
    if (!s.ok()) return Report(s.Context("restore --with-overlay " + ref->Name()));
    // One point in time: the overlay as synced above, unless the VM wrote since.
    auto agent = ControlClient::ForMount(live->mountpoint());
    auto now = agent.ok() ? agent->Changes({ref->Name(), false}) : Result<control::ChangesReply>(agent.status());
    if (!now.ok()) return Report(now.status().Context("restore --with-overlay"));
    if (now->generation != changes.generation) {
      return Report(Status::Busy(ref->Name() + " changed while it was restored (" +
                                 std::to_string(now->generation - changes.generation) + " changes): " + a.dest +
                                 " may mix two points in time; pause or stop the VM and restore again"));
    }
  }
  if (a.json) {
    json j = {{"backup", ref->Name()}, {"destination", LossyUtf8(a.dest)}, {"files", r->files},
              {"dirs", r->dirs},       {"symlinks", r->symlinks},          {"bytes", r->bytes},
              {"seconds", r->seconds}, {"failed", json::array()}};
    for (auto& f : r->failed) j["failed"].push_back(LossyUtf8(f));
    if (live) {
      j["overlay"] = {{"mountpoint", live->mountpoint()}, {"temporary_agent", live->temporary()},
                      {"files_patched", applied.patched}, {"files_copied", applied.copied},
                      {"entries_removed", applied.removed}, {"bytes", applied.bytes}};
    }
    PrintJson(j);
  } else {
    for (auto& f : r->failed) fmt::print(stderr, "livemount: not restored: {}\n", LossyUtf8(f));
    fmt::print("restored {} to {}: {} files, {} dirs, {} symlinks, {}, {:.1f} s, {:.0f} MB/s\n",
               ref->Name(), a.dest, r->files, r->dirs, r->symlinks, FormatBytes(r->bytes), r->seconds,
               r->seconds > 0 ? r->bytes / 1e6 / r->seconds : 0.0);
    if (live) {
      fmt::print("   with its overlay ({}): {} files patched, {} copied whole, {} entries removed, {} written\n",
                 live->temporary() ? "served by a media agent started for this" : "as " + live->mountpoint() + " shows it",
                 applied.patched, applied.copied, applied.removed, FormatBytes(applied.bytes));
    }
  }
  if (!r->failed.empty()) {
    return Report(Status::Corrupt("restore " + ref->Name() + ": " + std::to_string(r->failed.size()) +
                                  " entries could not be restored (named above)"));
  }
  return 0;
}

}  // namespace

void RegisterRestoreCommand(CLI::App& app, int* exit_code) {
  auto* c = app.add_subcommand("restore", "Restore a backup copy to a directory");
  auto a = std::make_shared<RestoreArgs>();
  AddRepoArgument(c, &a->repo);
  c->add_option("VM@BACKUP", a->spec, "VM, optionally @BACKUP (default latest)")->required();
  c->add_option("DESTDIR", a->dest, "Destination directory (new or empty)")->required();
  c->add_flag("--no-sync", a->no_sync, "Do not fsync restored files (faster, not crash-safe)");
  c->add_flag("--overwrite", a->overwrite, "Restore into a directory that is not empty");
  c->add_flag("--continue-on-error", a->continue_on_error,
              "Restore every file that can be, name the others, exit non-zero");
  c->add_flag("--json", a->json, "Machine-readable output");
  c->add_option("--cache-dir", a->cache_dir, "Where the repository's chunk index is kept (as for backup)");
  c->add_flag("--with-overlay", a->with_overlay,
              "With the changes the VM made on a live mount (its overlay, synced first): back to production");
  c->add_option("--state-dir", a->state_dir, "With --with-overlay: the media agent's state directory");
  c->callback([=] { *exit_code = Restore(*a); });
}

}  // namespace lm::cli

// forget and prune: retention and garbage collection of a repository; stats REPO.
#include <fmt/core.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "base/units.h"
#include "store/forget.h"
#include "store/prune.h"
#include "store/repo_stats.h"
#include "tools/cli/commands.h"

namespace lm::cli {

using nlohmann::json;

namespace {

// "5%", "0.5%" or a fraction "0.05".
Result<double> ParseShare(const std::string& text) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str()) return Status::Invalid("invalid share '" + text + "' (like 5%)");
  if (*end == '%' && end[1] == '\0') v /= 100;
  else if (*end != '\0') return Status::Invalid("invalid share '" + text + "' (like 5%)");
  if (!(v >= 0 && v <= 1)) return Status::Invalid("share '" + text + "' must be 0% to 100%");
  return v;
}

std::string LocalTime(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  localtime_r(&tt, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

struct PruneArgs {
  std::string max_unused = "5%", max_repack;
  bool dry_run = false, json = false;
};

Result<PruneOptions> PruneOptionsOf(const PruneArgs& a) {
  PruneOptions o;
  LM_ASSIGN_OR_RETURN(o.max_unused, ParseShare(a.max_unused));
  if (!a.max_repack.empty()) {
    LM_ASSIGN_OR_RETURN(o.max_repack, ParseSize(a.max_repack));
  }
  o.dry_run = a.dry_run;
  return o;
}

json PruneJson(const PruneReport& r) {
  return {{"packs", r.packs},
          {"packs_deleted", r.packs_deleted},
          {"packs_repacked", r.packs_repacked},
          {"packs_written", r.packs_written},
          {"chunks_used", r.chunks_used},
          {"chunks_unused", r.chunks_unused},
          {"bytes_before", r.bytes_before},
          {"bytes_after", r.bytes_after},
          {"bytes_reclaimed", r.reclaimed()},
          {"bytes_repacked", r.bytes_repacked},
          {"index_written", r.index_written},
          {"index_deleted", r.index_deleted},
          {"leftovers_deleted", r.leftovers_deleted},
          {"seconds", r.seconds}};
}

void PrintPrune(const PruneReport& r, bool dry_run) {
  fmt::print("{}{} of {} packs deleted, {} repacked ({} copied) into {}; {} unused chunks; "
             "{} reclaimed ({} -> {}); {} leftovers removed; {:.1f} s\n",
             dry_run ? "(dry run) would prune: " : "pruned: ", r.packs_deleted, r.packs, r.packs_repacked,
             FormatBytes(r.bytes_repacked), r.packs_written, r.chunks_unused, FormatBytes(r.reclaimed()),
             FormatBytes(r.bytes_before), FormatBytes(r.bytes_after), r.leftovers_deleted, r.seconds);
}

int Prune(const std::string& repo_path, const PruneArgs& a) {
  auto o = PruneOptionsOf(a);
  if (!o.ok()) return Report(o.status());
  auto repo = OpenRepo(repo_path);
  if (!repo.ok()) return Report(repo.status());
  auto r = RunPrune(**repo, *o);
  if (!r.ok()) return Report(r.status().Context("prune " + repo_path));
  if (a.json) PrintJson(PruneJson(*r));
  else PrintPrune(*r, a.dry_run);
  return 0;
}

struct ForgetArgs {
  std::string repo;
  std::vector<std::string> targets;  // VM, or VM@BACKUP...
  RetentionPolicy policy;
  std::string within;
  bool prune = false;
  PruneArgs prune_args;
};

int Forget(ForgetArgs a) {
  ForgetOptions o;
  o.dry_run = a.prune_args.dry_run;
  o.policy = a.policy;
  if (!a.within.empty()) {
    auto w = ParseDuration(a.within);
    if (!w.ok()) return Report(w.status().Context("--keep-within"));
    o.policy.within_seconds = *w;
  }
  for (const std::string& t : a.targets) {
    if (t.find('@') != std::string::npos) o.copies.push_back(t);
    else if (o.vm.empty()) o.vm = t;
    else return Report(Status::Invalid("name one VM, or copies as VM@BACKUP"));
  }
  if (!o.vm.empty() && !o.copies.empty()) return Report(Status::Invalid("name one VM, or copies as VM@BACKUP"));
  auto prune_options = PruneOptionsOf(a.prune_args);
  if (!prune_options.ok()) return Report(prune_options.status());
  auto repo = OpenRepo(a.repo);
  if (!repo.ok()) return Report(repo.status());
  auto r = RunForget(**repo, o);
  if (!r.ok()) return Report(r.status());
  std::optional<PruneReport> pruned;
  if (a.prune && (r->removed > 0 || o.dry_run)) {
    auto p = RunPrune(**repo, *prune_options);
    if (!p.ok()) return Report(p.status().Context("prune " + a.repo));
    pruned = *p;
  }
  if (a.prune_args.json) {
    json copies = json::array();
    for (auto& c : r->copies) {
      copies.push_back({{"vm", c.vm}, {"backup", c.id}, {"time", c.time}, {"keep", c.keep},
                        {"reasons", c.reasons}, {"held_by", c.held_by}, {"removed", c.removed}});
    }
    json j = {{"dry_run", o.dry_run}, {"policy", o.copies.empty() ? o.policy.Describe() : "named copies"},
              {"kept", r->kept},      {"removed", r->removed},
              {"held", r->held},      {"copies", copies}};
    if (pruned) j["prune"] = PruneJson(*pruned);
    PrintJson(j);
    return 0;
  }
  if (o.copies.empty()) fmt::print("policy: {}\n", o.policy.Describe());
  fmt::print("{:<16} {:<20} {:<20} {:<7} {}\n", "VM", "BACKUP", "TIME (local)", "ACTION", "WHY");
  for (auto& c : r->copies) {
    std::string why;
    for (auto& reason : c.reasons) why += (why.empty() ? "" : ", ") + reason;
    if (!c.held_by.empty()) why = c.held_by;
    fmt::print("{:<16} {:<20} {:<20} {:<7} {}\n", c.vm, c.id, LocalTime(c.time),
               c.keep ? "keep" : o.dry_run ? "forget?" : "forget", c.keep ? why : "");
  }
  fmt::print("{}{} backup copies, kept {}{}\n", o.dry_run ? "(dry run) would forget " : "forgot ", r->removed,
             r->kept, r->held ? fmt::format(" ({} held by media agents)", r->held) : "");
  if (pruned) PrintPrune(*pruned, o.dry_run);
  return 0;
}

}  // namespace

int RepoStatsCommand(const std::string& repo_path, const std::string& vm, bool as_json) {
  auto repo = OpenRepo(repo_path);
  if (!repo.ok()) return Report(repo.status());
  auto r = CollectRepoStats(**repo, vm);
  if (!r.ok()) return Report(r.status());
  const RepoStats& s = *r;
  if (as_json) {
    json copies = json::array();
    for (auto& c : s.copies) {
      copies.push_back({{"vm", c.vm}, {"backup", c.id}, {"files", c.files}, {"logical_bytes", c.logical_bytes},
                        {"chunks", c.chunks}, {"unique_stored_bytes", c.unique_stored},
                        {"shared_stored_bytes", c.shared_stored}});
    }
    PrintJson({{"copies", copies},
               {"logical_bytes", s.logical_bytes},
               {"chunks", s.chunks},
               {"raw_bytes", s.raw_bytes},
               {"stored_bytes", s.stored_bytes},
               {"dedup_ratio", s.dedup_ratio()},
               {"compression_ratio", s.compression_ratio()},
               {"unreferenced_chunks", s.unreferenced_chunks},
               {"unreferenced_bytes", s.unreferenced_bytes},
               {"reclaimable_bytes", s.reclaimable()},
               {"packs", s.packs},
               {"pack_bytes", s.pack_bytes},
               {"min_pack_fill", s.min_pack_fill},
               {"mean_pack_fill", s.mean_pack_fill}});
    return 0;
  }
  fmt::print("{:<16} {:<20} {:>6} {:>10} {:>9} {:>11} {:>11}\n", "VM", "BACKUP", "FILES", "SIZE", "CHUNKS",
             "UNIQUE", "SHARED");
  for (auto& c : s.copies) {
    fmt::print("{:<16} {:<20} {:>6} {:>10} {:>9} {:>11} {:>11}\n", c.vm, c.id, c.files, FormatBytes(c.logical_bytes),
               c.chunks, FormatBytes(c.unique_stored), FormatBytes(c.shared_stored));
  }
  fmt::print("\ncopies hold {} of files; their {} distinct chunks are {} ({:.2f}x dedup), stored as {} "
             "({:.2f}x compression)\n",
             FormatBytes(s.logical_bytes), s.chunks, FormatBytes(s.raw_bytes), s.dedup_ratio(),
             FormatBytes(s.stored_bytes), s.compression_ratio());
  fmt::print("{} packs, {}; fill {:.0f}% on average, {:.0f}% at the least; prune would reclaim about {}\n",
             s.packs, FormatBytes(s.pack_bytes), 100 * s.mean_pack_fill, 100 * s.min_pack_fill,
             FormatBytes(s.reclaimable()));
  return 0;
}

void RegisterLifecycleCommands(CLI::App& app, int* exit_code) {
  {
    auto a = std::make_shared<ForgetArgs>();
    auto* c = app.add_subcommand("forget", "Forget backup copies by a retention policy (restic's rules) or by name");
    AddRepoArgument(c, &a->repo);
    c->add_option("TARGET", a->targets, "A VM (default: every VM), or backup copies as VM@BACKUP");
    c->add_option("--keep-last", a->policy.last, "Keep the N newest copies (-1: all)");
    c->add_option("--keep-hourly", a->policy.hourly, "Keep the newest copy of each of the last N hours with one");
    c->add_option("--keep-daily", a->policy.daily, "... of each of the last N days");
    c->add_option("--keep-weekly", a->policy.weekly, "... of each of the last N ISO weeks");
    c->add_option("--keep-monthly", a->policy.monthly, "... of each of the last N months");
    c->add_option("--keep-yearly", a->policy.yearly, "... of each of the last N years");
    c->add_option("--keep-within", a->within, "Keep every copy younger than this, from the newest (30d, 2w, 12h)");
    c->add_flag("--dry-run", a->prune_args.dry_run, "Say what would be forgotten (and pruned), change nothing");
    c->add_flag("--prune", a->prune, "Prune afterwards");
    c->add_option("--max-unused", a->prune_args.max_unused, "With --prune: leave at most this much unused space");
    c->add_option("--max-repack", a->prune_args.max_repack, "With --prune: rewrite at most this much");
    c->add_flag("--json", a->prune_args.json, "Machine-readable output");
    c->callback([=] { *exit_code = Forget(*a); });
  }
  {
    auto repo = std::make_shared<std::string>();
    auto a = std::make_shared<PruneArgs>();
    auto* c = app.add_subcommand("prune", "Delete chunks no backup copy uses; repack packs that are mostly unused");
    AddRepoArgument(c, repo);
    c->add_option("--max-unused", a->max_unused, "Leave at most this much unused space, of the used (default 5%)");
    c->add_option("--max-repack", a->max_repack, "Rewrite at most this much in one run (e.g. 10G)");
    c->add_flag("--dry-run", a->dry_run, "Say what would be done, change nothing");
    c->add_flag("--json", a->json, "Machine-readable output");
    c->callback([=] { *exit_code = Prune(*repo, *a); });
  }
}

}  // namespace lm::cli

// profile learn|show|import|export, prestage: VM profiles and the pre-stager.
#include <fmt/core.h>

#include <cstdlib>
#include <ctime>
#include <map>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "agent/control_client.h"
#include "agent/media_agent.h"
#include "base/state_layout.h"
#include "profile/choice.h"
#include "profile/prestage.h"
#include "tools/cli/commands.h"
#include "tools/cli/progress.h"

namespace lm::cli {

namespace {

void PrintProfile(const Profile& p, const std::string& where) {
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_source;  // entries, bytes
  for (auto& e : p.entries) {
    auto& s = by_source[e.source];
    s.first++;
    for (auto& [off, len] : e.ranges) s.second += len;
  }
  fmt::print("profile of {} ({}): {} entries, {}\n", p.vm.empty() ? "?" : p.vm, where,
             p.entries.size(), FormatBytes(p.Bytes()));
  for (auto& [src, v] : by_source) fmt::print("  {:<11} {} entries, {}\n", src, v.first, FormatBytes(v.second));
  size_t shown = 0;
  for (auto& e : p.entries) {
    if (shown++ == 10) {
      fmt::print("  ... {} more\n", p.entries.size() - 10);
      break;
    }
    uint64_t bytes = 0;
    for (auto& [off, len] : e.ranges) bytes += len;
    fmt::print("  #{:<4} {:<24} {} ranges from offset {}, {}{}\n", e.order, e.file, e.ranges.size(),
               e.ranges.empty() ? 0 : e.ranges.front().first, FormatBytes(bytes),
               e.note.empty() ? "" : " (" + e.note + ")");
  }
}

int Learn(const std::string& vm, std::string state_dir, const std::string& output) {
  if (state_dir.empty()) state_dir = DefaultStateDir();
  auto trace_dir = StateLayout(state_dir).TraceDir(vm);
  if (!trace_dir.ok()) return Report(trace_dir.status());
  std::string dir = *trace_dir;
  auto names = ListDir(dir);
  if (!names.ok() || names->empty()) {
    return Report(Status::NotFound(dir + ": no recorded live mounts of VM '" + vm + "'"));
  }
  std::vector<Trace> traces;
  for (auto& n : *names) {
    std::string path = JoinPath(dir, n);
    auto text = Env::Default()->ReadFile(path);
    if (!text.ok()) return Report(text.status());
    auto t = DecodeTrace(*text, path);
    if (!t.ok()) return Report(t.status());
    traces.push_back(std::move(t).value());
  }
  Profile p = LearnProfile(vm, traces);
  p.created_ns = static_cast<int64_t>(::time(nullptr)) * 1000000000;
  std::string out = output;
  if (out.empty()) {
    auto learned = StateLayout(state_dir).ProfileFile(vm);
    if (!learned.ok()) return Report(learned.status());
    out = *learned;
  }
  Status s = SaveProfile(CliEnv(), out, p);
  if (!s.ok()) return Report(s);
  fmt::print("learned the profile of {} from {} recorded mounts: {} entries, {}; saved to {}\n", vm,
             traces.size(), p.entries.size(), FormatBytes(p.Bytes()), out);
  return 0;
}

int Show(const std::string& file, bool as_json) {
  auto p = LoadProfile(CliEnv(), file);
  if (!p.ok()) return Report(p.status());
  if (as_json) {
    PrintJson(nlohmann::json::parse(EncodeProfile(*p)));
    return 0;
  }
  PrintProfile(*p, file);
  return 0;
}

int Import(const std::string& vm, const std::string& file, std::string state_dir) {
  if (state_dir.empty()) state_dir = DefaultStateDir();
  auto learned = StateLayout(state_dir).ProfileFile(vm);
  if (!learned.ok()) return Report(learned.status());
  auto p = LoadProfile(CliEnv(), file);
  if (!p.ok()) return Report(p.status());
  p->vm = vm;
  std::string out = *learned;
  Status s = SaveProfile(CliEnv(), out, *p);
  if (!s.ok()) return Report(s);
  fmt::print("imported {} as the profile of {} ({})\n", file, vm, out);
  return 0;
}

int Export(const std::string& repo_path, const std::string& spec, const std::string& file,
           std::string state_dir) {
  if (state_dir.empty()) state_dir = DefaultStateDir();
  auto repo = OpenRepo(repo_path);
  if (!repo.ok()) return Report(repo.status());
  auto ref = (*repo)->ResolveSpec(spec);
  if (!ref.ok()) return Report(ref.status());
  std::string chosen;
  std::vector<std::string> notes;
  auto p = ChooseProfile(**repo, *ref, "", state_dir, &chosen, &notes);
  if (!p.ok()) return Report(p.status());
  for (auto& n : notes) fmt::print(stderr, "livemount: {}{}\n", n.rfind("warning: ", 0) == 0 ? "" : "note: ", n);
  Status s = SaveProfile(CliEnv(), file, *p);
  if (!s.ok()) return Report(s);
  fmt::print("exported the profile of {} ({}) to {}\n", ref->Name(), chosen, file);
  return 0;
}

struct PrestageArgs {
  std::string repo, spec, profile, cache_dir, state_dir, cache_size = "10G", pin_for, mount;
  bool all = false, json = false;
  unsigned threads = 8;
};

// The livemount mount whose media agent owns `cache_dir`, from /proc/self/mountinfo.
std::string MountOwningCache(const std::string& cache_dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" - fuse.livemount ") == std::string::npos) continue;
    std::istringstream f(line);
    std::string id, parent, dev, root, mp;
    f >> id >> parent >> dev >> root >> mp;
    auto agent = ControlClient::ForMount(mp);
    if (!agent.ok()) continue;
    auto stats = agent->Stats(5000);
    if (stats.ok() && stats->cache.dir == cache_dir) return mp;
  }
  return "";
}

int PrestageThroughMount(const PrestageArgs& a, const std::string& mountpoint, int64_t pin_until) {
  auto agent = ControlClient::ForMount(mountpoint);
  if (!agent.ok()) return Report(agent.status());
  control::PrestageRequest req{a.spec, a.profile.empty() ? "" : AbsolutePath(a.profile), a.all, pin_until,
                               a.threads};
  if (a.spec.find('@') == std::string::npos) req.backup = a.spec + "@latest";
  auto r = agent->Prestage(req);
  if (!r.ok()) return Report(r.status().Context("prestage through " + mountpoint));
  if (a.json) {
    PrintJson(control::Encode(*r));
    return r->failed ? 1 : 0;
  }
  fmt::print("prestaged {} through the mount at {} from profile {}: {} chunks in profile, {} already "
             "cached, {} fetched ({}), {} failed, {:.1f} s\n",
             r->backup, mountpoint, r->profile, r->profile_chunks, r->already_cached, r->fetched,
             FormatBytes(r->bytes_fetched), r->failed, r->seconds);
  return r->failed ? Report(Status::Corrupt("some chunks could not be fetched")) : 0;
}

int RunPrestage(PrestageArgs a) {
  if (a.cache_dir.empty()) a.cache_dir = DefaultCacheDir();
  if (a.state_dir.empty()) a.state_dir = DefaultStateDir();
  auto size = ParseSize(a.cache_size);
  if (!size.ok()) return Report(size.status().Context("--cache-size"));
  int64_t pin_until = 0;
  if (Status s = CheckRange("--threads", a.threads, 1, 64); !s.ok()) return Report(s);
  if (!a.pin_for.empty()) {
    auto seconds = ParseDuration(a.pin_for);
    if (!seconds.ok()) return Report(seconds.status().Context("--pin-for"));
    pin_until = static_cast<int64_t>(::time(nullptr)) + *seconds;
  }
  auto repo = OpenRepo(a.repo, a.cache_dir);
  if (!repo.ok()) return Report(repo.status());
  auto ref = (*repo)->ResolveSpec(a.spec);
  if (!ref.ok()) return Report(ref.status());
  if (!a.mount.empty()) return PrestageThroughMount(a, a.mount, pin_until);
  std::string chosen;
  std::vector<std::string> notes;
  auto p = ChooseProfile(**repo, *ref, a.profile, a.state_dir, &chosen, &notes);
  if (!p.ok()) return Report(p.status());
  for (auto& n : notes) fmt::print(stderr, "livemount: {}{}\n", n.rfind("warning: ", 0) == 0 ? "" : "note: ", n);
  auto cache = ReadCache::Open(CacheOptions{CliEnv(), a.cache_dir, *size, (*repo)->chunk_size()});
  if (!cache.ok() && cache.status().code() == Code::kBusy) {
    // The cache belongs to a running mount: its media agent stages (and pins) for us.
    std::string mp = MountOwningCache(AbsolutePath(a.cache_dir));
    if (!mp.empty()) return PrestageThroughMount(a, mp, pin_until);
  }
  if (!cache.ok()) return Report(cache.status().Context("--cache-dir"));
  ChunkSource source(**repo, **cache, ChunkSourceOptions{a.threads});
  ProgressBar bar("prestage " + ref->Name(), ProgressBar::Unit::kChunks);
  PrestageOptions o;
  o.threads = a.threads;
  o.all = a.all;
  o.pin_until = pin_until;
  o.progress = [&](uint64_t done, uint64_t total) { bar.Update(done, total); };
  auto r = Prestage(**repo, source, *ref, *p, o);
  bar.Done();
  if (!r.ok()) return Report(r.status());
  if (a.json) {
    PrintJson({{"backup", ref->Name()}, {"profile", chosen}, {"profile_chunks", r->profile_chunks},
               {"total_chunks", r->total_chunks}, {"already_cached", r->already_cached}, {"fetched", r->fetched},
               {"bytes_fetched", r->bytes_fetched}, {"failed", r->failed}, {"missing_files", r->missing_files},
               {"seconds", r->seconds}, {"notes", notes}});
    return r->failed ? 1 : 0;
  }
  fmt::print("prestaged {} from profile {}: {} chunks in profile{}, {} already cached, {} fetched "
             "({}), {} failed, {:.1f} s, {:.0f} MB/s\n",
             ref->Name(), chosen, r->profile_chunks,
             a.all ? fmt::format(" ({} with --all)", r->total_chunks) : "", r->already_cached,
             r->fetched, FormatBytes(r->bytes_fetched), r->failed, r->seconds,
             r->seconds > 0 ? r->bytes_fetched / 1e6 / r->seconds : 0.0);
  if (r->missing_files) {
    fmt::print(stderr, "livemount: note: {} profile entries name files {} does not have\n",
               r->missing_files, ref->Name());
  }
  return r->failed ? Report(Status::Corrupt(std::to_string(r->failed) +
                                            " chunks could not be fetched (see verify)"))
                   : 0;
}

}  // namespace

void RegisterProfileCommands(CLI::App& app, int* exit_code) {
  auto* prof = app.add_subcommand("profile", "VM profiles: what a boot reads first");
  prof->require_subcommand(1);
  {
    auto* c = prof->add_subcommand("learn", "Learn a VM's profile from its recorded live mounts");
    auto vm = std::make_shared<std::string>();
    auto state = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    c->add_option("VM", *vm, "VM name")->required();
    c->add_option("--state-dir", *state, "Media agent state directory (where traces are)");
    c->add_option("--output,-o", *out, "Write here instead of STATE/profiles/VM.json");
    c->callback([=] { *exit_code = Learn(*vm, *state, *out); });
  }
  {
    auto* c = prof->add_subcommand("show", "Summarize a profile file");
    auto file = std::make_shared<std::string>();
    c->add_option("FILE", *file, "Profile JSON")->required();
    auto as_json = std::make_shared<bool>(false);
    c->add_flag("--json", *as_json, "The profile as checked JSON (entries sorted by order)");
    c->callback([=] { *exit_code = Show(*file, *as_json); });
  }
  {
    auto* c = prof->add_subcommand("import", "Use a profile file as a VM's learned profile");
    auto vm = std::make_shared<std::string>();
    auto file = std::make_shared<std::string>();
    auto state = std::make_shared<std::string>();
    c->add_option("VM", *vm, "VM name")->required();
    c->add_option("FILE", *file, "Profile JSON")->required();
    c->add_option("--state-dir", *state, "Media agent state directory");
    c->callback([=] { *exit_code = Import(*vm, *file, *state); });
  }
  {
    auto* c = prof->add_subcommand("export", "Write the profile a backup copy would be pre-staged with");
    auto repo = std::make_shared<std::string>();
    auto spec = std::make_shared<std::string>();
    auto file = std::make_shared<std::string>();
    auto state = std::make_shared<std::string>();
    AddRepoArgument(c, repo);
    c->add_option("VM@BACKUP", *spec, "Backup copy")->required();
    c->add_option("FILE", *file, "Output file")->required();
    c->add_option("--state-dir", *state, "Media agent state directory");
    c->callback([=] { *exit_code = Export(*repo, *spec, *file, *state); });
  }
  {
    auto* c = app.add_subcommand("prestage", "Copy the blocks a VM needs first into the read-cache");
    auto a = std::make_shared<PrestageArgs>();
    AddRepoArgument(c, &a->repo);
    c->add_option("VM@BACKUP", a->spec, "Backup copy (default latest)")->required();
    c->add_option("--profile", a->profile, "Profile JSON (default: the backup's, the learned, structural)");
    c->add_option("--cache-dir", a->cache_dir, "Read-cache directory");
    c->add_option("--cache-size", a->cache_size, "Read-cache capacity")->capture_default_str();
    c->add_option("--state-dir", a->state_dir, "Media agent state directory (learned profiles)");
    c->add_flag("--all", a->all, "Then stage every other chunk of the backup copy (hydrate)");
    c->add_option("--pin-for", a->pin_for, "Keep the staged chunks from eviction this long (30m, 2h, 1d)");
    c->add_option("--threads", a->threads, "Parallel fetches")->capture_default_str();
    c->add_option("--mount", a->mount, "Stage through this running mount (found by --cache-dir otherwise)");
    c->add_flag("--json", a->json, "Machine-readable output");
    c->callback([=] { *exit_code = RunPrestage(*a); });
  }
}

}  // namespace lm::cli

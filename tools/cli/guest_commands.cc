// The guest's files in a backup copy: ls, cat, profile add-files, and the guest-path side
// of backup --select-files (browse is in browse.cc).
#include <fmt/core.h>
#include <unistd.h>

#include <ctime>

#include "agent/media_agent.h"
#include "guest/view.h"
#include "base/state_layout.h"
#include "profile/prestage.h"
#include "profile/structural.h"
#include "base/env.h"
#include "tools/cli/commands.h"
#include "base/json_bytes.h"

namespace lm::cli {

using nlohmann::json;

Result<std::unique_ptr<GuestView>> OpenGuestView(Repository& repo, const std::string& spec, BackupRef* ref) {
  LM_ASSIGN_OR_RETURN(*ref, repo.ResolveSpec(spec));
  return GuestView::OpenBackup(repo, *ref);
}

Result<Profile> AddGuestFiles(Profile base, GuestView& view, const std::vector<std::string>& paths,
                              uint64_t* files, uint64_t* bytes) {
  // Re-picking a path replaces its old entries.
  std::vector<ProfileEntry> kept;
  for (auto& e : base.entries) {
    bool replaced = false;
    for (auto& p : paths) {
      std::string prefix = p.back() == '/' ? p : p + "/";
      replaced |= e.source == "guest-file" && (e.note == p || e.note.rfind(prefix, 0) == 0);
    }
    if (!replaced) kept.push_back(e);
  }
  base.entries = kept;
  for (auto& p : paths) {
    LM_ASSIGN_OR_RETURN(auto resolved, view.Resolve(p));
    for (auto& r : resolved) {
      if (r.guest_path.back() != '/') (*files)++;
      *bytes += r.ranges.bytes();
    }
    base.Append(GuestFileEntries(resolved));
  }
  return base;
}

Status SaveGuestFiles(Repository& repo, const BackupRef& ref, GuestView& view, const std::vector<std::string>& paths,
                      const std::string& state_dir, uint64_t* files, uint64_t* bytes, std::string* path_out) {
  LM_ASSIGN_OR_RETURN(std::string path, StateLayout(state_dir).ProfileFile(ref.vm));
  Profile base;
  if (PathExists(path)) {
    LM_ASSIGN_OR_RETURN(base, LoadProfile(CliEnv(), path));
  } else {
    std::vector<std::string> notes;  // no profile yet: start from the structural one
    LM_ASSIGN_OR_RETURN(base, StructuralProfile(repo, ref, &notes));
  }
  base.vm = ref.vm;
  LM_ASSIGN_OR_RETURN(Profile p, AddGuestFiles(std::move(base), view, paths, files, bytes));
  *path_out = path;
  return SaveProfile(CliEnv(), path, p);
}

namespace {

std::string Size(uint64_t n) { return FormatBytes(n); }

std::string When(int64_t t) {
  if (t <= 0) return "";
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  localtime_r(&tt, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

int Ls(const std::string& repo_path, const std::string& arg, bool as_json) {
  std::string spec, path;
  Status s = SplitGuestSpec(arg, &spec, &path);
  if (!s.ok()) return Report(s);
  auto repo = OpenRepo(repo_path);
  if (!repo.ok()) return Report(repo.status());
  BackupRef ref;
  auto view = OpenGuestView(**repo, spec, &ref);
  if (!view.ok()) return Report(view.status());
  if (path == "/") {
    json out = json::array();
    for (auto& v : (*view)->volumes()) {
      json jv = {{"name", v.name}, {"partition", v.part.number}, {"size", v.part.size},
                 {"filesystem", v.fs_type}, {"label", LossyUtf8(v.label)}, {"error", LossyUtf8(v.error)}};
      SetBytesField(jv, "disk", v.disk_file);
      out.push_back(std::move(jv));
      if (!as_json) {
        std::string where = v.disk_file + (v.part.number ? " partition " + std::to_string(v.part.number) : "");
        fmt::print("{:<6} {:<6} {:>10}  {:<24} {}\n", v.name, v.error.empty() ? v.fs_type : "-", Size(v.part.size),
                   where, v.error.empty() ? v.label : "(" + v.error + ")");
      }
    }
    if (as_json) PrintJson(out);
    return 0;
  }
  auto st = (*view)->Stat(path);
  if (!st.ok()) return Report(st.status());
  std::vector<GuestEntry> entries;
  if (st->type == 'd') {
    auto l = (*view)->List(path);
    if (!l.ok()) return Report(l.status());
    entries = std::move(l).value();
  } else {
    entries.push_back(*st);
  }
  json out = json::array();
  for (auto& e : entries) {
    if (as_json) {
      json je = {{"type", std::string(1, e.type)}, {"size", e.size}, {"mtime", e.mtime}};
      SetBytesField(je, "name", e.name);
      out.push_back(std::move(je));
    } else {
      fmt::print("{} {:>12} {:<16} {}{}\n", e.type == 'd' ? 'd' : e.type == 'l' ? 'l' : '-', e.size, When(e.mtime),
                 LossyUtf8(e.name), e.type == 'd' ? "/" : "");
    }
  }
  if (as_json) PrintJson(out);
  return 0;
}

int Cat(const std::vector<std::string>& args, const std::string& image) {
  std::unique_ptr<Repository> repo;
  Result<std::unique_ptr<GuestView>> view = Status::Invalid("");
  std::string path;
  if (!image.empty()) {
    if (args.size() != 1) return Report(Status::Invalid("cat --image FILE takes one /guest/path"));
    path = args[0];
    view = GuestView::OpenImage(CliEnv(), image);
  } else {
    if (args.size() != 2) return Report(Status::Invalid("cat takes REPO VM[@BACKUP]:/guest/path"));
    std::string spec;
    Status s = SplitGuestSpec(args[1], &spec, &path);
    if (!s.ok()) return Report(s);
    auto r = OpenRepo(args[0]);
    if (!r.ok()) return Report(r.status());
    repo = std::move(r).value();
    BackupRef ref;
    view = OpenGuestView(*repo, spec, &ref);
  }
  if (!view.ok()) return Report(view.status());
  auto st = (*view)->Stat(path);
  if (!st.ok()) return Report(st.status());
  if (st->type != 'f') return Report(Status::Invalid(path + ": not a regular file"));
  std::string buf;
  for (uint64_t off = 0; off < st->size; off += buf.size()) {
    Status s = (*view)->Read(path, off, std::min<uint64_t>(4 << 20, st->size - off), &buf);
    if (!s.ok()) return Report(s);
    if (buf.empty()) return Report(Status::Corrupt(path + ": file ends early at " + std::to_string(off)));
    if (::write(1, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) {
      return Report(Status::IoError("write to standard output failed"));
    }
  }
  return 0;
}

int AddFiles(const std::string& repo_path, const std::string& spec, const std::vector<std::string>& paths,
             std::string state_dir) {
  if (state_dir.empty()) state_dir = DefaultStateDir();
  auto repo = OpenRepo(repo_path);
  if (!repo.ok()) return Report(repo.status());
  BackupRef ref;
  auto view = OpenGuestView(**repo, spec, &ref);
  if (!view.ok()) return Report(view.status());
  uint64_t files = 0, bytes = 0;
  std::string saved;
  Status s = SaveGuestFiles(**repo, ref, **view, paths, state_dir, &files, &bytes, &saved);
  if (!s.ok()) return Report(s);
  fmt::print("added {} guest file{} of {} ({} of image ranges) to the profile of {} ({})\n", files,
             files == 1 ? "" : "s", ref.Name(), Size(bytes), ref.vm, saved);
  return 0;
}

}  // namespace

void RegisterGuestCommands(CLI::App& app, int* exit_code) {
  {
    auto* c = app.add_subcommand("ls", "List the guest's volumes or files in a backup copy (VM[@BACKUP]:/sda1/etc)");
    auto repo = std::make_shared<std::string>();
    auto arg = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    AddRepoArgument(c, repo);
    c->add_option("VM[@BACKUP][:/PATH]", *arg, "Backup copy and guest path (/ lists the volumes)")->required();
    c->add_flag("--json", *as_json, "Machine-readable output");
    c->callback([=] { *exit_code = Ls(*repo, *arg, *as_json); });
  }
  {
    auto* c = app.add_subcommand("cat", "Write a guest file of a backup copy (or of a disk image) to stdout");
    auto args = std::make_shared<std::vector<std::string>>();
    auto image = std::make_shared<std::string>();
    c->add_option("ARGS", *args, "REPO VM[@BACKUP]:/sda1/path, or /sda1/path with --image")->required();
    c->add_option("--image", *image, "Read from this disk image file instead (local, or on a live mount)");
    c->callback([=] { *exit_code = Cat(*args, *image); });
  }
  auto* prof = app.get_subcommand("profile");
  {
    auto* c = prof->add_subcommand("add-files", "Add guest files (and folders) to a VM's profile");
    auto repo = std::make_shared<std::string>();
    auto spec = std::make_shared<std::string>();
    auto paths = std::make_shared<std::vector<std::string>>();
    auto state_dir = std::make_shared<std::string>();
    AddRepoArgument(c, repo);
    c->add_option("VM[@BACKUP]", *spec, "Backup copy whose disks are read")->required();
    c->add_option("GUEST_PATH", *paths, "Guest paths like /sda1/var/lib/mysql")->required();
    c->add_option("--state-dir", *state_dir, "Media agent state directory (holds the VM's profile)");
    c->callback([=] { *exit_code = AddFiles(*repo, *spec, *paths, *state_dir); });
  }
}

}  // namespace lm::cli

// livemount browse: a terminal file manager over a backup copy's guest files (ncurses).
// Volumes, then directories, then files with sizes; arrows and Enter move, Space marks a
// file or a folder (recursively), `s` saves the marked set into the VM's profile and can
// start a prestage. Listings are read once and kept, so moving around is instant.
#include <fmt/core.h>
#include <ncurses.h>
#include <unistd.h>

#include <map>
#include <set>

#include "agent/media_agent.h"
#include "guest/view.h"
#include "tools/cli/commands.h"

namespace lm::cli {

namespace {

struct Marked {
  uint64_t files = 0, bytes = 0;
};

class Browser {
 public:
  Browser(GuestView& view, Repository& repo, BackupRef ref, std::string repo_path, std::string state_dir)
      : view_(view), repo_(repo), ref_(std::move(ref)), repo_path_(std::move(repo_path)), state_dir_(std::move(state_dir)) {}

  // Returns true if a prestage should run after the screen closes.
  bool Run() {
    Enter("/");
    for (;;) {
      Draw();
      int key = getch();
      message_.clear();
      const auto& list = entries_[path_];
      int n = static_cast<int>(list.size());
      switch (key) {
        case KEY_UP: case 'k': cursor_ = std::max(0, cursor_ - 1); break;
        case KEY_DOWN: case 'j': cursor_ = std::min(n - 1, cursor_ + 1); break;
        case KEY_PPAGE: cursor_ = std::max(0, cursor_ - Rows()); break;
        case KEY_NPAGE: cursor_ = std::min(n - 1, cursor_ + Rows()); break;
        case KEY_HOME: cursor_ = 0; break;
        case KEY_END: cursor_ = n - 1; break;
        case '\n': case KEY_ENTER: case KEY_RIGHT:
          if (n > 0 && list[cursor_].type == 'd') Enter(Child(list[cursor_].name));
          else if (n > 0) message_ = list[cursor_].name + " is a file: Space marks it";
          break;
        case KEY_LEFT: case KEY_BACKSPACE: case 127: case 'h': Up(); break;
        case ' ': if (n > 0) Toggle(list[cursor_]); if (cursor_ < n - 1) cursor_++; break;
        case 's': if (Save()) return Ask("prestage " + ref_.Name() + " now? [y/N]"); break;
        case 'q': case 27: return false;
        default: break;
      }
    }
  }

 private:
  int Rows() const { return std::max(1, LINES - 4); }
  std::string Child(const std::string& name) const { return path_ == "/" ? "/" + name : path_ + "/" + name; }

  void Enter(const std::string& path) {
    if (!entries_.count(path)) {
      auto l = view_.List(path);
      if (!l.ok()) {
        message_ = l.status().message();
        return;
      }
      entries_[path] = std::move(l).value();
    }
    cursors_[path_] = cursor_;
    path_ = path;
    cursor_ = cursors_.count(path) ? cursors_[path] : 0;
  }

  void Up() {
    if (path_ == "/") return;
    std::string parent = path_.substr(0, path_.find_last_of('/'));
    Enter(parent.empty() ? "/" : parent);
  }

  // A folder's total, walked once (listings are cached for browsing too).
  Marked Measure(const std::string& path, const GuestEntry& e, int depth) {
    if (e.type != 'd') return {1, e.size};
    Marked m;
    if (depth > 64) return m;
    if (!entries_.count(path)) {
      auto l = view_.List(path);
      if (!l.ok()) return m;
      entries_[path] = std::move(l).value();
    }
    for (const GuestEntry& c : entries_[path]) {
      Marked sub = Measure(path + "/" + c.name, c, depth + 1);
      m.files += sub.files;
      m.bytes += sub.bytes;
    }
    return m;
  }

  void Toggle(const GuestEntry& e) {
    if (path_ == "/") {
      message_ = "mark files and folders inside a volume";
      return;
    }
    std::string p = Child(e.name);
    if (marked_.erase(p)) return;
    for (auto& [m, size] : marked_) {
      if (p.rfind(m + "/", 0) == 0) {
        message_ = "already marked with " + m;
        return;
      }
    }
    // Marking a folder replaces marks below it.
    for (auto it = marked_.begin(); it != marked_.end();) it = it->first.rfind(p + "/", 0) == 0 ? marked_.erase(it) : std::next(it);
    marked_[p] = Measure(p, e, 0);
  }

  bool Marks(const std::string& p) const {
    for (auto& [m, size] : marked_) {
      if (p == m || p.rfind(m + "/", 0) == 0) return true;
    }
    return false;
  }

  bool Save() {
    if (marked_.empty()) {
      message_ = "nothing marked (Space marks)";
      return false;
    }
    std::vector<std::string> paths;
    for (auto& [p, m] : marked_) paths.push_back(p);
    message_ = "resolving " + std::to_string(paths.size()) + " marked paths...";
    Draw();
    uint64_t files = 0, bytes = 0;
    std::string saved;
    Status s = SaveGuestFiles(repo_, ref_, view_, paths, state_dir_, &files, &bytes, &saved);
    if (!s.ok()) {
      message_ = s.message();
      return false;
    }
    message_ = fmt::format("saved {} files ({} of image ranges) to {}", files, FormatBytes(bytes), saved);
    return true;
  }

  bool Ask(const std::string& question) {
    message_ = question + "  (" + message_ + ")";  // the question first: it must fit 80 columns
    Draw();
    int key = getch();
    return key == 'y' || key == 'Y';
  }

  void Draw() {
    erase();
    int w = std::max(COLS, 20);
    attron(A_REVERSE);
    mvaddnstr(0, 0, fmt::format(" livemount browse {}  {}", ref_.Name(), path_).append(w, ' ').c_str(), w);
    attroff(A_REVERSE);
    const auto& list = entries_[path_];
    int rows = Rows(), n = static_cast<int>(list.size());
    int top = std::clamp(cursor_ - rows / 2, 0, std::max(0, n - rows));
    if (n == 0) mvaddnstr(2, 2, "(empty)", w - 2);
    for (int i = top; i < std::min(n, top + rows); i++) {
      const GuestEntry& e = list[i];
      std::string mark = path_ == "/" ? "   " : Marks(Child(e.name)) ? "[x]" : "[ ]";
      std::string name = e.name + (e.type == 'd' ? "/" : e.type == 'l' ? "@" : "");
      std::string detail = FormatBytes(e.size);
      if (path_ == "/") {
        for (auto& v : view_.volumes()) {
          if (v.name == e.name) detail = v.error.empty() ? v.fs_type + " " + v.label + " " + detail : "unreadable: " + v.error;
        }
      }
      int name_w = std::max(10, w - 18);
      if (path_ == "/") name_w = 8;
      std::string line = fmt::format("{} {:<{}.{}} {}", mark, name, name_w, name_w, detail);
      if (i == cursor_) attron(A_REVERSE);
      mvaddnstr(1 + i - top, 0, line.c_str(), w);
      if (i == cursor_) attroff(A_REVERSE);
    }
    Marked total;
    for (auto& [p, m] : marked_) {
      total.files += m.files;
      total.bytes += m.bytes;
    }
    mvaddnstr(LINES - 3, 0, message_.c_str(), w);
    attron(A_BOLD);
    mvaddnstr(LINES - 2, 0, fmt::format("marked: {} files, {}", total.files, FormatBytes(total.bytes)).c_str(), w);
    attroff(A_BOLD);
    mvaddnstr(LINES - 1, 0, "arrows/Enter move  Space mark  s save to profile  q quit", w);
    refresh();
  }

  GuestView& view_;
  Repository& repo_;
  BackupRef ref_;
  std::string repo_path_, state_dir_;
  std::map<std::string, std::vector<GuestEntry>> entries_;
  std::map<std::string, int> cursors_;
  std::map<std::string, Marked> marked_;  // marked guest paths (folders count what is below)
  std::string path_ = "/", message_;
  int cursor_ = 0;
};

int Browse(const std::string& repo_path, const std::string& spec, std::string state_dir) {
  if (state_dir.empty()) state_dir = DefaultStateDir();
  if (!isatty(0) || !isatty(1)) return Report(Status::Invalid("browse needs a terminal (use ls and profile add-files in scripts)"));
  auto repo = OpenRepo(repo_path);
  if (!repo.ok()) return Report(repo.status());
  BackupRef ref;
  auto view = OpenGuestView(**repo, spec, &ref);
  if (!view.ok()) return Report(view.status());
  initscr();
  cbreak();
  noecho();
  keypad(stdscr, TRUE);
  set_escdelay(25);
  curs_set(0);
  Browser b(**view, **repo, ref, repo_path, state_dir);
  bool prestage = b.Run();
  endwin();
  if (!prestage) return 0;
  fmt::print("pre-staging {}...\n", ref.Name());
  std::fflush(stdout);
  std::string spec_arg = ref.Name(), self = "/proc/self/exe";
  execl(self.c_str(), "livemount", "prestage", repo_path.c_str(), spec_arg.c_str(), "--state-dir", state_dir.c_str(),
        static_cast<char*>(nullptr));
  return Report(Status::FromErrno(errno, "cannot start prestage"));
}

}  // namespace

void RegisterBrowseCommand(CLI::App& app, int* exit_code) {
  auto* c = app.add_subcommand("browse", "Pick guest files for a VM's profile in a terminal file manager");
  auto repo = std::make_shared<std::string>();
  auto spec = std::make_shared<std::string>();
  auto state_dir = std::make_shared<std::string>();
  AddRepoArgument(c, repo);
  c->add_option("VM[@BACKUP]", *spec, "Backup copy (default: latest)")->required();
  c->add_option("--state-dir", *state_dir, "Media agent state directory (holds the VM's profile)");
  c->callback([=] { *exit_code = Browse(*repo, *spec, *state_dir); });
}

}  // namespace lm::cli

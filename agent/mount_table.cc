#include "agent/mount_table.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "base/env.h"

namespace lm {

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size() &&
        isdigit(static_cast<unsigned char>(s[i + 1])) && isdigit(static_cast<unsigned char>(s[i + 2])) &&
        isdigit(static_cast<unsigned char>(s[i + 3]))) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::optional<MountEntry> ParseLine(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> f;
  std::string w;
  while (in >> w) f.push_back(w);
  // id parent major:minor root mountpoint options [optional...] - fstype source super_options
  size_t dash = 0;
  for (size_t i = 6; i < f.size(); i++)
    if (f[i] == "-") {
      dash = i;
      break;
    }
  if (dash == 0 || dash + 2 >= f.size()) return std::nullopt;
  MountEntry e;
  e.mountpoint = Unescape(f[4]);
  e.fstype = f[dash + 1];
  e.source = Unescape(f[dash + 2]);
  e.super_options = dash + 3 < f.size() ? f[dash + 3] : "";
  std::istringstream opts(e.super_options);
  std::string opt;
  while (std::getline(opts, opt, ',')) {
    if (opt.rfind("user_id=", 0) == 0) e.fuse_owner = static_cast<uid_t>(std::stoul(opt.substr(8)));
  }
  return e;
}

}  // namespace

std::string AbsoluteMountPath(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (p.empty()) return p;
  std::string parent = DirName(p), base = p.substr(p.find_last_of('/') == std::string::npos ? 0 : p.find_last_of('/') + 1);
  if (p == "/") return p;
  std::string abs_parent = AbsolutePath(parent);
  if (!abs_parent.empty() && abs_parent[0] != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd)) abs_parent = JoinPath(cwd, abs_parent);
  }
  if (base == "." || base == "..") return AbsolutePath(p);
  return JoinPath(abs_parent, base);
}

std::vector<MountEntry> LivemountMounts() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::vector<MountEntry> out;
  while (std::getline(in, line)) {
    auto e = ParseLine(line);
    if (e && e->fstype == kLivemountFsType) out.push_back(std::move(*e));
  }
  return out;
}

std::optional<MountEntry> FindMount(const std::string& path) {
  std::string want = AbsoluteMountPath(path);
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::optional<MountEntry> found;
  while (std::getline(in, line)) {
    auto e = ParseLine(line);
    if (e && e->mountpoint == want) found = std::move(e);  // later lines are stacked on top
  }
  return found;
}

}  // namespace lm

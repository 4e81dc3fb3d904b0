#include "tools/cli/restore_overlay.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>

#include "agent/control.h"
#include "agent/control_client.h"
#include "agent/media_agent.h"
#include "agent/mount_table.h"
#include "base/env.h"
#include "base/subprocess.h"
#include "tools/cli/commands.h"
#include "tools/cli/from_mount.h"
#include "tools/cli/password.h"

namespace lm::cli {

namespace {

constexpr size_t kCopyBuffer = 1 << 20;

Status Errno(const std::string& what) { return Status::FromErrno(errno, what); }

// Copies [off, end) of `from` into `to` at the same offsets.
Status CopyRange(int from, int to, uint64_t off, uint64_t end, const std::string& what, uint64_t* bytes) {
  std::string buf(kCopyBuffer, '\0');
  while (off < end) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - off));
    ssize_t n = ::pread(from, buf.data(), want, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(what);
    if (n == 0) return Status::Corrupt(what + ": ended at " + std::to_string(off) + " while being read");
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::pwrite(to, buf.data() + done, n - done, static_cast<off_t>(off + done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Errno(what);
      done += w;
    }
    off += n;
    *bytes += n;
  }
  return Status::Ok();
}

// Modes, owners (as root), times and user extended attributes of the mount's entry.
Status CopyAttributes(const std::string& src, const std::string& dst, const struct stat& st, bool symlink) {
  if (!symlink && ::chmod(dst.c_str(), st.st_mode & 07777) != 0) return Errno(dst);
  if (::geteuid() == 0 && ::lchown(dst.c_str(), st.st_uid, st.st_gid) != 0) return Errno(dst);
  if (!symlink) {
    char names[64 * 1024];
    ssize_t n = ::llistxattr(src.c_str(), names, sizeof names);
    for (ssize_t i = 0; n > 0 && i < n; i += std::strlen(names + i) + 1) {
      std::string name = names + i;
      // The mount's own attributes (user.livemount.*) describe the media agent, not the VM.
      if (name.rfind("user.", 0) != 0 || name.rfind("user.livemount.", 0) == 0) continue;
      char value[64 * 1024];
      ssize_t v = ::lgetxattr(src.c_str(), name.c_str(), value, sizeof value);
      if (v >= 0 && ::lsetxattr(dst.c_str(), name.c_str(), value, v, 0) != 0 && errno != ENOTSUP) return Errno(dst);
    }
  }
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(AT_FDCWD, dst.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) return Errno(dst);
  return Status::Ok();
}

class Applier {
 public:
  Applier(const std::string& src_root, const control::ChangesReply& changes, const BackupManifest& base,
          const std::string& dest_root, bool sync, OverlayApplied* out)
      : src_root_(src_root), base_(base), dest_root_(dest_root), sync_(sync), out_(out) {
    for (const auto& f : changes.files) changes_[f.path] = &f;
  }

  Status Dir(const std::string& rel) {
    std::string src = Join(src_root_, rel), dst = Join(dest_root_, rel);
    LM_ASSIGN_OR_RETURN(auto names, ListDir(src));
    std::map<std::string, bool> kept;
    for (const std::string& name : names) {
      std::string r = rel.empty() ? name : rel + "/" + name;
      std::string s = Join(src_root_, r), d = Join(dest_root_, r);
      struct stat st, dt;
      if (::lstat(s.c_str(), &st) != 0) return Errno(s);
      // A view is made by the mount, not kept; unless the guest wrote through it.
      if (S_ISREG(st.st_mode) && !changes_.count(r) && IsViewOnMount(s)) continue;
      kept[name] = true;
      bool have = ::lstat(d.c_str(), &dt) == 0;
      if (S_ISDIR(st.st_mode)) {
        if (have && !S_ISDIR(dt.st_mode)) {
          LM_RETURN_IF_ERROR(Remove(d));
          have = false;
        }
        if (!have && ::mkdir(d.c_str(), 0700) != 0) return Errno(d);
        LM_RETURN_IF_ERROR(Dir(r));
        LM_RETURN_IF_ERROR(CopyAttributes(s, d, st, false));
      } else if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = ::readlink(s.c_str(), target, sizeof target);
        if (n < 0) return Errno(s);
        std::string t(target, n);
        char cur[4096];
        ssize_t m = have && S_ISLNK(dt.st_mode) ? ::readlink(d.c_str(), cur, sizeof cur) : -1;
        if (m < 0 || std::string(cur, m) != t) {
          if (have) LM_RETURN_IF_ERROR(Remove(d));
          if (::symlink(t.c_str(), d.c_str()) != 0) return Errno(d);
        }
        LM_RETURN_IF_ERROR(CopyAttributes(s, d, st, true));
      } else if (S_ISREG(st.st_mode)) {
        LM_RETURN_IF_ERROR(File(r, s, d, st, have ? &dt : nullptr));
      } else if (S_ISFIFO(st.st_mode)) {
        if (have) LM_RETURN_IF_ERROR(Remove(d));
        if (::mkfifo(d.c_str(), st.st_mode & 07777) != 0) return Errno(d);
      }  // sockets and devices are not restored, as a backup does not keep them
    }
    // What the overlay removed (whiteouts) goes from the restore too.
    LM_ASSIGN_OR_RETURN(auto present, ListDir(dst));
    for (const std::string& name : present) {
      if (!kept.count(name)) {
        LM_RETURN_IF_ERROR(Remove(Join(dst, name)));
        out_->removed++;
      }
    }
    if (sync_) LM_RETURN_IF_ERROR(Env::Default()->FsyncDir(dst));
    return Status::Ok();
  }

 private:
  static std::string Join(const std::string& root, const std::string& rel) {
    return rel.empty() ? root : JoinPath(root, rel);
  }

  static Status Remove(const std::string& path) {
    std::error_code ec;  // symlinks are removed, never followed
    std::filesystem::remove_all(path, ec);
    if (ec) return Status::IoError("cannot remove " + path + ": " + ec.message());
    return Status::Ok();
  }

  Status File(const std::string& rel, const std::string& s, const std::string& d, const struct stat& st,
              const struct stat* dt) {
    UniqueFd from(::open(s.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (from.get() < 0) return Errno(s);
    auto it = changes_.find(rel);
    const control::ChangesReply::File* c = it == changes_.end() ? nullptr : it->second;
    uint64_t size = static_cast<uint64_t>(st.st_size);
    // The restore already holds this path's backed-up bytes: only what was written moves.
    bool patch = c && c->base >= 0 && static_cast<size_t>(c->base) < base_.files.size() &&
                 base_.files[c->base].path == rel && dt && S_ISREG(dt->st_mode) &&
                 static_cast<uint64_t>(dt->st_size) == c->base_size && c->size == size;
    if (patch) {
      UniqueFd to(::open(d.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
      if (to.get() < 0) return Errno(d);
      // Past the base limit the overlay shows zeros where nothing was written.
      if (::ftruncate(to.get(), static_cast<off_t>(std::min(c->base_limit, size))) != 0 ||
          ::ftruncate(to.get(), static_cast<off_t>(size)) != 0) {
        return Errno(d);
      }
      for (auto [a, b] : c->written) {
        if (a >= size) break;
        LM_RETURN_IF_ERROR(CopyRange(from.get(), to.get(), a, std::min(b, size), s, &out_->bytes));
      }
      if (sync_ && ::fsync(to.get()) != 0) return Errno(d);
      out_->patched += !c->written.empty() || c->base_limit < size || c->size != c->base_size;
    } else {
      // New, renamed or replaced: the whole file, under a temporary name first.
      // A name no entry of the copy has (a leftover goes with the entries the copy lacks).
      std::string tmp = d + ".livemount-" + RandomHex(6);
      UniqueFd to(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (to.get() < 0) return Errno(tmp);
      if (::ftruncate(to.get(), static_cast<off_t>(size)) != 0) return Errno(tmp);
      LM_RETURN_IF_ERROR(CopyRange(from.get(), to.get(), 0, size, s, &out_->bytes));
      if (sync_ && ::fsync(to.get()) != 0) return Errno(tmp);
      if (dt && S_ISDIR(dt->st_mode)) LM_RETURN_IF_ERROR(Remove(d));
      if (::rename(tmp.c_str(), d.c_str()) != 0) return Errno(d);
      out_->copied++;
    }
    return CopyAttributes(s, d, st, false);
  }

  std::string src_root_;
  const BackupManifest& base_;
  std::string dest_root_;
  bool sync_;
  OverlayApplied* out_;
  std::map<std::string, const control::ChangesReply::File*> changes_;
};

}  // namespace

Status ApplyOverlay(const std::string& copy_dir, const control::ChangesReply& changes, const BackupManifest& base,
                    const std::string& dest, bool sync, OverlayApplied* out) {
  Applier a(copy_dir, changes, base, dest, sync, out);
  LM_RETURN_IF_ERROR(a.Dir(""));
  struct stat st;
  if (::stat(copy_dir.c_str(), &st) == 0) (void)CopyAttributes(copy_dir, dest, st, false);
  return Status::Ok();
}

Result<std::unique_ptr<LiveCopySource>> LiveCopySource::Find(const std::string& repo, const std::string& state_dir) {
  std::unique_ptr<LiveCopySource> src(new LiveCopySource());
  std::string want = AbsolutePath(state_dir);
  for (const MountEntry& m : LivemountMounts()) {
    auto agent = ControlClient::ForMount(m.mountpoint);
    if (!agent.ok()) continue;
    auto stats = agent->Stats();
    if (!stats.ok() || stats->state_dir != want) continue;
    if (AbsoluteLocation(stats->repository) != AbsoluteLocation(repo)) {
      return Status::Invalid("the media agent at " + m.mountpoint + " keeps " + want + " for " + stats->repository +
                             ", not " + repo);
    }
    src->mountpoint_ = m.mountpoint;
    return src;
  }
  // None runs: a media agent of our own, on a private mountpoint, with a temporary cache.
  char tmpl[] = "/tmp/livemount-restore-XXXXXX";
  if (!::mkdtemp(tmpl)) return Errno("temporary directory");
  src->tmp_ = tmpl;
  MountOptions o;
  o.env = CliEnv();
  o.repo = repo;
  o.mountpoint = JoinPath(src->tmp_, "mnt");
  o.cache_dir = JoinPath(src->tmp_, "cache");
  o.cache_size = 256ull << 20;
  o.state_dir = want;
  o.password = CliPasswordSource();
  o.quiet = true;
  LM_RETURN_IF_ERROR(MkdirAll(o.mountpoint));
  if (RunMediaAgent(o) != 0) return Status::IoError("cannot start a media agent for " + want + " (said above)");
  src->mountpoint_ = o.mountpoint;
  auto pid = DaemonPidOf(o.mountpoint);
  src->pid_ = pid.ok() ? *pid : 0;
  return src;
}

LiveCopySource::~LiveCopySource() {
  if (tmp_.empty()) return;
  std::string err;
  if (!mountpoint_.empty() && FindMount(mountpoint_)) {
    if (RunCommand({"fusermount3", "-u", mountpoint_}, &err) != 0) (void)RunCommand({"fusermount3", "-u", "-z", mountpoint_}, &err);
    if (pid_ > 0) WaitUntil(std::chrono::seconds(60), std::chrono::milliseconds(20), [&] { return !ProcessAlive(pid_); });
  }
  std::error_code ec;
  std::filesystem::remove_all(tmp_, ec);
}

}  // namespace lm::cli

#include "store/vm_scan.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace lm {

namespace {

bool Excluded(const ScanOptions& o, const std::string& rel, const std::string& name) {
  for (const std::string& p : o.excludes) {
    if (::fnmatch(p.c_str(), rel.c_str(), FNM_PATHNAME) == 0) return true;
    if (::fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

std::vector<std::string> SplitPath(const std::string& rel) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t slash = rel.find('/', start);
    if (slash == std::string::npos) slash = rel.size();
    parts.push_back(rel.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}


void Walk(int dirfd, const std::string& root, const std::string& rel, const ScanOptions& o,
          ScanResult* out) {
  std::string shown = rel.empty() ? root : JoinPath(root, rel);
  auto names = ListDirAt(dirfd, shown);
  if (!names.ok()) {
    out->warnings.push_back(names.status().message());
    return;
  }
  for (const std::string& name : *names) {
    std::string r = rel.empty() ? name : rel + "/" + name;
    if (o.skip_paths.count(r)) continue;
    if (Excluded(o, r, name)) {
      out->excluded.push_back(r);
      continue;
    }
    std::string full = JoinPath(root, r);
    struct stat st;
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      out->warnings.push_back(Status::FromErrno(errno, full).message());
      continue;
    }
    FileEntry f;
    f.path = r;
    f.mode = st.st_mode & 07777;
    f.uid = st.st_uid;
    f.gid = st.st_gid;
    f.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    f.atime_ns = int64_t{st.st_atim.tv_sec} * 1000000000 + st.st_atim.tv_nsec;
    ScannedIdentity id{st.st_dev, st.st_ino};
    if (S_ISREG(st.st_mode)) {
      f.type = FileType::kFile;
      f.size = st.st_size;
    } else if (S_ISLNK(st.st_mode)) {
      f.type = FileType::kSymlink;
      std::string target(std::max<size_t>(st.st_size, 255) + 1, '\0');
      ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
      if (n < 0 || size_t(n) == target.size()) {
        out->warnings.push_back(Status::FromErrno(n < 0 ? errno : ENAMETOOLONG, "readlink " + full).message());
        continue;
      }
      target.resize(n);
      f.target = target;
      f.size = target.size();
    } else if (S_ISDIR(st.st_mode)) {
      // O_NOFOLLOW | O_DIRECTORY: a folder swapped for a symlink since the stat fails here.
      UniqueFd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      struct stat sst;
      if (!sub.valid() || ::fstat(sub.get(), &sst) != 0) {
        out->warnings.push_back(Status::FromErrno(errno, full).message());
        continue;
      }
      if (sst.st_dev != st.st_dev || sst.st_ino != st.st_ino) {
        out->warnings.push_back(full + ": replaced while being scanned; not backed up");
        continue;
      }
      f.type = FileType::kDir;
      Status xs = ReadXattrs(sub.get(), full, &f.xattrs);
      if (!xs.ok()) out->warnings.push_back(xs.message());
      out->files.push_back(std::move(f));
      out->identity.push_back(id);
      Walk(sub.get(), root, r, o, out);
      continue;
    } else {
      out->special.push_back(r);
      continue;
    }
    out->files.push_back(std::move(f));
    out->identity.push_back(id);
  }
}

bool KeptXattr(const std::string& name) {
  // user.livemount.* are a live mount's own (its control socket, the views): not the VM's.
  if (name.rfind("user.livemount.", 0) == 0) return false;
  return name.rfind("user.", 0) == 0 || name.rfind("trusted.", 0) == 0 || name.rfind("security.", 0) == 0;
}

}  // namespace

Status ReadXattrs(int fd, const std::string& shown, std::map<std::string, std::string>* out) {
  out->clear();
  std::string names(4096, '\0');
  ssize_t n;
  while ((n = ::flistxattr(fd, names.data(), names.size())) < 0 && errno == ERANGE) names.resize(names.size() * 4);
  if (n < 0) {
    if (errno == ENOTSUP) return Status::Ok();
    return Status::FromErrno(errno, "list extended attributes of " + shown);
  }
  for (size_t pos = 0; pos < size_t(n);) {
    std::string name(names.data() + pos);
    pos += name.size() + 1;
    if (!KeptXattr(name)) continue;
    std::string value(4096, '\0');
    ssize_t v;
    while ((v = ::fgetxattr(fd, name.c_str(), value.data(), value.size())) < 0 && errno == ERANGE &&
           value.size() < 65536) {
      value.resize(65536);
    }
    if (v < 0) {
      if (errno == ENODATA) continue;  // removed meanwhile
      return Status::FromErrno(errno, "read extended attribute " + name + " of " + shown);
    }
    value.resize(v);
    (*out)[name] = value;
  }
  return Status::Ok();
}

Status WriteXattrs(int fd, const std::string& shown, const std::map<std::string, std::string>& xattrs) {
  for (auto& [name, value] : xattrs) {
    if (::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) != 0) {
      if (errno == ENOTSUP) return Status::Ok();  // the destination keeps none
      return Status::FromErrno(errno, "set extended attribute " + name + " of " + shown);
    }
  }
  return Status::Ok();
}

bool IsNormalRelativePath(const std::string& rel) {
  if (rel.empty() || rel.find('\0') != std::string::npos) return false;
  for (const std::string& part : SplitPath(rel)) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

Result<UniqueFd> OpenBeneath(int dirfd, const std::string& rel, int flags, mode_t mode,
                             const std::string& shown_root) {
  std::string shown = shown_root.empty() ? rel : JoinPath(shown_root, rel);
  if (!IsNormalRelativePath(rel)) return Status::Invalid(shown + ": not a plain relative path");
  std::vector<std::string> parts = SplitPath(rel);
  UniqueFd cur;
  int at = dirfd;
  for (size_t i = 0; i + 1 < parts.size(); i++) {
    UniqueFd next(::openat(at, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) {
      if (errno == ELOOP || errno == ENOTDIR) {
        return Status::Invalid(shown + ": '" + parts[i] + "' on the way is not a directory (a symlink is never followed)");
      }
      return Status::FromErrno(errno, shown);
    }
    cur = std::move(next);
    at = cur.get();
  }
  int fd = ::openat(at, parts.back().c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == ELOOP) return Status::Invalid(shown + ": is a symlink (not followed)");
    return Status::FromErrno(errno, shown);
  }
  return UniqueFd(fd);
}

Result<ScanResult> ScanVmDirectory(const std::string& root, const ScanOptions& options) {
  ScanResult out;
  out.root.reset(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!out.root.valid()) {
    if (errno == ENOENT || errno == ENOTDIR) return Status::NotFound(root + ": no such VM directory");
    return Status::FromErrno(errno, root);
  }
  Walk(out.root.get(), root, "", options, &out);
  return out;
}

Result<UniqueFd> OpenScanned(const ScanResult& scan, size_t index) {
  const FileEntry& f = scan.files[index];
  // O_NONBLOCK: a FIFO swapped in must not hang the backup (it is refused below anyway).
  // O_NOATIME is allowed to the file's owner and to root only.
  int flags = O_RDONLY | O_NONBLOCK;
  if (::geteuid() == 0 || ::geteuid() == f.uid) flags |= O_NOATIME;
  auto fd = OpenBeneath(scan.root.get(), f.path, flags);
  if (!fd.ok()) return fd.status();
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return Status::FromErrno(errno, f.path);
  const ScannedIdentity& id = scan.identity[index];
  if (!S_ISREG(st.st_mode) || st.st_dev != id.dev || st.st_ino != id.ino) {
    return Status::Invalid(f.path + ": replaced since the scan (not the file that was scanned); not backed up");
  }
  int fl = ::fcntl(fd->get(), F_GETFL);
  if (fl >= 0) ::fcntl(fd->get(), F_SETFL, fl & ~O_NONBLOCK);
  return fd;
}

}  // namespace lm

#include "store/restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "store/vm_scan.h"

namespace lm {

namespace {

struct timespec Ts(int64_t ns) {
  struct timespec t;
  t.tv_sec = ns / 1000000000;
  t.tv_nsec = ns % 1000000000;
  if (t.tv_nsec < 0) t.tv_sec--, t.tv_nsec += 1000000000;
  return t;
}

// Owner (as root), mode and times of an open file or directory: through its descriptor,
// so nothing is resolved by name again after it was opened.
Status SetAttributesFd(int fd, const FileEntry& f, const std::string& shown) {
  LM_RETURN_IF_ERROR(WriteXattrs(fd, shown, f.xattrs));
  if (::geteuid() == 0 && ::fchown(fd, f.uid, f.gid) != 0) return Status::FromErrno(errno, "chown " + shown);
  if (::fchmod(fd, f.mode) != 0) return Status::FromErrno(errno, "chmod " + shown);
  struct timespec ts[2] = {Ts(f.atime_ns), Ts(f.mtime_ns)};
  if (::futimens(fd, ts) != 0) return Status::FromErrno(errno, "set times of " + shown);
  return Status::Ok();
}

Status SetSymlinkAttributes(int dirfd, const std::string& name, const FileEntry& f, const std::string& shown) {
  if (::geteuid() == 0 && ::fchownat(dirfd, name.c_str(), f.uid, f.gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return Status::FromErrno(errno, "chown " + shown);
  }
  struct timespec ts[2] = {Ts(f.atime_ns), Ts(f.mtime_ns)};
  if (::utimensat(dirfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
    return Status::FromErrno(errno, "set times of " + shown);
  }
  return Status::Ok();
}

std::string BaseName(const std::string& rel) {
  auto slash = rel.rfind('/');
  return slash == std::string::npos ? rel : rel.substr(slash + 1);
}

// The directory that holds `rel`, opened beneath DESTDIR without following symlinks.
Result<UniqueFd> OpenParent(int destfd, const std::string& rel, const std::string& dest) {
  auto slash = rel.rfind('/');
  if (slash == std::string::npos) {
    int fd = ::fcntl(destfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return Status::FromErrno(errno, dest);
    return UniqueFd(fd);
  }
  return OpenBeneath(destfd, rel.substr(0, slash), O_RDONLY | O_DIRECTORY, 0, dest);
}

// Clears the way for a new entry `name` in `dirfd` when something of another kind is
// there (a restore over an earlier one). A directory in the way is an error, not removed.
Status ClearName(int dirfd, const std::string& name, const std::string& shown) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Status::Ok();
  if (S_ISDIR(st.st_mode)) return Status::Exists(shown + ": a directory is in the way");
  if (::unlinkat(dirfd, name.c_str(), 0) != 0) return Status::FromErrno(errno, "remove " + shown);
  return Status::Ok();
}

Result<bool> DirectoryIsEmpty(const std::string& dir) {
  LM_ASSIGN_OR_RETURN(auto names, ListDir(dir));
  return names.empty();
}

Status RestoreFile(Repository& repo, const FileChunks& fc, int fd, const std::string& path,
                   unsigned threads, std::atomic<uint64_t>* done, RestoreSummary* sum) {
  std::atomic<uint64_t> next{0}, read{0}, zeros{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;
  // Each worker takes a batch of neighbouring chunks: they usually sit next to each other
  // in one pack, and the repository reads such a run with one request.
  constexpr uint64_t kBatch = 32;
  auto worker = [&] {
    std::vector<Digest> want;
    std::vector<uint64_t> where;
    std::vector<std::string> raws;
    for (uint64_t first; !failed && (first = next.fetch_add(kBatch)) < fc.digests.size();) {
      uint64_t last = std::min<uint64_t>(fc.digests.size(), first + kBatch);
      want.clear();
      where.clear();
      for (uint64_t i = first; i < last; i++) {
        if (fc.digests[i].IsZero()) {
          zeros++;  // the file was truncated to size: this range is already a hole
          *done += fc.ChunkLen(i);
        } else {
          want.push_back(fc.digests[i]);
          where.push_back(i);
        }
      }
      Status s = want.empty() ? Status::Ok() : repo.ReadChunks(want, &raws);
      for (size_t k = 0; s.ok() && k < want.size(); k++) {
        uint64_t i = where[k];
        uint32_t len = fc.ChunkLen(i);
        if (raws[k].size() != len) {
          s = Status::Corrupt(path + ": chunk " + want[k].ShortHex() + " has " + std::to_string(raws[k].size()) +
                              " bytes, expected " + std::to_string(len));
          break;
        }
        s = repo.env()->PWrite(fd, raws[k].data(), len, i * fc.chunk_size, path);
        read++;
        *done += len;
      }
      if (!s.ok()) {
        std::lock_guard lock(mu);
        if (first_error.ok()) first_error = s;
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  unsigned n = static_cast<unsigned>(std::min<uint64_t>(threads, std::max<size_t>(1, fc.digests.size())));
  for (unsigned t = 1; t < n; t++) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  sum->chunks_read += read;
  sum->zero_chunks += zeros;
  return first_error;
}

}  // namespace

Result<RestoreSummary> RunRestore(Repository& repo, const BackupRef& backup,
                                  const std::string& dest, const RestoreOptions& o) {
  auto start = std::chrono::steady_clock::now();
  LM_ASSIGN_OR_RETURN(BackupManifest m, repo.LoadManifest(backup));  // validated paths only
  if (dest.empty()) return Status::Invalid("no destination directory given");
  LM_RETURN_IF_ERROR(MkdirAll(dest));
  if (!o.overwrite) {
    LM_ASSIGN_OR_RETURN(bool empty, DirectoryIsEmpty(dest));
    if (!empty) return Status::Exists(dest + ": destination is not empty (restore over it with --overwrite)");
  }
  // Everything below is created relative to this descriptor, never through a symlink: not
  // one already in DESTDIR, not one this restore created.
  UniqueFd destfd(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!destfd.valid()) return Status::FromErrno(errno, dest);
  if (::faccessat(destfd.get(), ".", W_OK, AT_EACCESS) != 0) return Status::FromErrno(errno, dest);
  unsigned threads = o.threads ? o.threads : 2 * std::max(1u, std::thread::hardware_concurrency());

  RestoreSummary sum;
  RestoreProgress progress;
  for (auto& f : m.files)
    if (f.type == FileType::kFile) progress.total_bytes += f.size;
  std::atomic<uint64_t> done{0};

  auto restore_one = [&](const FileEntry& f) -> Status {
    std::string shown = JoinPath(dest, f.path);
    std::string name = BaseName(f.path);
    LM_ASSIGN_OR_RETURN(UniqueFd dir, OpenParent(destfd.get(), f.path, dest));
    switch (f.type) {
      case FileType::kDir: {
        if (::mkdirat(dir.get(), name.c_str(), 0700) != 0) {
          if (errno != EEXIST) return Status::FromErrno(errno, "mkdir " + shown);
          struct stat st;
          if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
            LM_RETURN_IF_ERROR(ClearName(dir.get(), name, shown));
            if (::mkdirat(dir.get(), name.c_str(), 0700) != 0) return Status::FromErrno(errno, "mkdir " + shown);
          }
        }
        sum.dirs++;
        return Status::Ok();
      }
      case FileType::kSymlink:
        LM_RETURN_IF_ERROR(ClearName(dir.get(), name, shown));
        if (::symlinkat(f.target.c_str(), dir.get(), name.c_str()) != 0) {
          return Status::FromErrno(errno, "symlink " + shown);
        }
        LM_RETURN_IF_ERROR(SetSymlinkAttributes(dir.get(), name, f, shown));
        sum.symlinks++;
        return Status::Ok();
      case FileType::kFile: {
        LM_ASSIGN_OR_RETURN(FileChunks fc, repo.LoadFileChunks(backup, f));
        std::string tmp = ".lmrestore-" + RandomHex(6);
        UniqueFd fd(::openat(dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd.valid()) return Status::FromErrno(errno, JoinPath(DirName(shown), tmp));
        struct Unlinker {
          int dirfd;
          std::string name;
          bool armed = true;
          ~Unlinker() {
            if (armed) ::unlinkat(dirfd, name.c_str(), 0);
          }
        } unlinker{dir.get(), tmp};
        if (::ftruncate(fd.get(), static_cast<off_t>(f.size)) != 0) {
          return Status::FromErrno(errno, "truncate " + shown);
        }
        Status s;
        std::atomic<bool> finished{false};
        std::thread t([&] {
          s = RestoreFile(repo, fc, fd.get(), shown, threads, &done, &sum);
          finished = true;
        });
        while (!finished) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          progress.done_bytes = done;
          if (o.progress) o.progress(progress);
        }
        t.join();
        LM_RETURN_IF_ERROR(s.Context("restore " + backup.Name() + ":" + f.path));
        LM_RETURN_IF_ERROR(SetAttributesFd(fd.get(), f, shown));
        if (o.sync) LM_RETURN_IF_ERROR(repo.env()->Fsync(fd.get(), shown));
        fd.reset();
        if (::renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str()) != 0) {
          return Status::FromErrno(errno, "rename into place " + shown);
        }
        unlinker.armed = false;
        sum.files++;
        sum.bytes += f.size;
        return Status::Ok();
      }
    }
    return Status::Ok();
  };

  std::unordered_set<std::string> failed_dirs;
  for (const FileEntry& f : m.files) {
    progress.current_file = f.path;
    Status s = restore_one(f);
    if (s.ok()) continue;
    if (!o.continue_on_error) return s;
    sum.failed.push_back(s.message());
    if (f.type == FileType::kDir) failed_dirs.insert(f.path);
  }
  // Directory attributes last (restoring their contents changed their times), deepest first.
  for (auto it = m.files.rbegin(); it != m.files.rend(); ++it) {
    if (it->type != FileType::kDir || failed_dirs.count(it->path)) continue;
    std::string shown = JoinPath(dest, it->path);
    auto fd = OpenBeneath(destfd.get(), it->path, O_RDONLY | O_DIRECTORY, 0, dest);
    Status s = fd.ok() ? SetAttributesFd(fd->get(), *it, shown) : fd.status();
    if (s.ok()) continue;
    if (!o.continue_on_error) return s;
    sum.failed.push_back(s.message());
  }
  progress.done_bytes = done;
  if (o.progress) o.progress(progress);
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return sum;
}

}  // namespace lm

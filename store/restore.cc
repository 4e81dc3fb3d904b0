#include "store/restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace lm {

namespace {

Status SetAttributes(const std::string& path, const FileEntry& f, bool is_link) {
  if (::geteuid() == 0) {
    if (::lchown(path.c_str(), f.uid, f.gid) != 0) return Status::FromErrno(errno, "chown " + path);
  }
  if (!is_link && ::chmod(path.c_str(), f.mode) != 0) {
    return Status::FromErrno(errno, "chmod " + path);
  }
  struct timespec ts[2];
  ts[0].tv_sec = f.atime_ns / 1000000000;
  ts[0].tv_nsec = f.atime_ns % 1000000000;
  ts[1].tv_sec = f.mtime_ns / 1000000000;
  ts[1].tv_nsec = f.mtime_ns % 1000000000;
  if (::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
    return Status::FromErrno(errno, "set times of " + path);
  }
  return Status::Ok();
}

Status RestoreFile(Repository& repo, const FileChunks& fc, int fd, const std::string& path,
                   unsigned threads, std::atomic<uint64_t>* done, RestoreSummary* sum) {
  std::atomic<uint64_t> next{0}, read{0}, zeros{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;
  auto worker = [&] {
    std::string raw;
    for (uint64_t i; !failed && (i = next.fetch_add(1)) < fc.digests.size();) {
      const Digest& d = fc.digests[i];
      uint32_t len = fc.ChunkLen(i);
      Status s;
      if (d.IsZero()) {
        zeros++;  // the file was truncated to size: this range is already a hole
      } else {
        s = repo.ReadChunk(d, &raw);
        if (s.ok() && raw.size() != len) {
          s = Status::Corrupt(path + ": chunk " + d.ShortHex() + " has " +
                              std::to_string(raw.size()) + " bytes, expected " +
                              std::to_string(len));
        }
        if (s.ok()) s = repo.env()->PWrite(fd, raw.data(), len, i * fc.chunk_size, path);
        read++;
      }
      *done += len;
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
  LM_ASSIGN_OR_RETURN(BackupManifest m, repo.LoadManifest(backup));
  LM_RETURN_IF_ERROR(MkdirAll(dest));
  if (::access(dest.c_str(), W_OK) != 0) return Status::FromErrno(errno, dest);
  unsigned threads = o.threads ? o.threads : 2 * std::max(1u, std::thread::hardware_concurrency());

  RestoreSummary sum;
  RestoreProgress progress;
  for (auto& f : m.files)
    if (f.type == FileType::kFile) progress.total_bytes += f.size;
  std::atomic<uint64_t> done{0};

  for (const FileEntry& f : m.files) {
    std::string path = JoinPath(dest, f.path);
    progress.current_file = f.path;
    switch (f.type) {
      case FileType::kDir:
        if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
          return Status::FromErrno(errno, "mkdir " + path);
        }
        sum.dirs++;
        break;
      case FileType::kSymlink:
        ::unlink(path.c_str());
        if (::symlink(f.target.c_str(), path.c_str()) != 0) {
          return Status::FromErrno(errno, "symlink " + path);
        }
        LM_RETURN_IF_ERROR(SetAttributes(path, f, true));
        sum.symlinks++;
        break;
      case FileType::kFile: {
        LM_ASSIGN_OR_RETURN(FileChunks fc, repo.LoadFileChunks(backup, f));
        std::string tmp = JoinPath(DirName(path), ".lmrestore-" + RandomHex(6));
        LM_ASSIGN_OR_RETURN(UniqueFd fd, repo.env()->Open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600));
        struct Unlinker {
          std::string p;
          bool armed = true;
          ~Unlinker() {
            if (armed) ::unlink(p.c_str());
          }
        } unlinker{tmp};
        if (::ftruncate(fd.get(), static_cast<off_t>(f.size)) != 0) {
          return Status::FromErrno(errno, "truncate " + tmp);
        }
        Status s;
        std::atomic<bool> finished{false};
        std::thread t([&] {
          s = RestoreFile(repo, fc, fd.get(), path, threads, &done, &sum);
          finished = true;
        });
        while (!finished) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          progress.done_bytes = done;
          if (o.progress) o.progress(progress);
        }
        t.join();
        LM_RETURN_IF_ERROR(s.Context("restore " + backup.Name() + ":" + f.path));
        if (o.sync) LM_RETURN_IF_ERROR(repo.env()->Fsync(fd.get(), tmp));
        fd.reset();
        LM_RETURN_IF_ERROR(repo.env()->Rename(tmp, path));
        unlinker.armed = false;
        LM_RETURN_IF_ERROR(SetAttributes(path, f, false));
        sum.files++;
        sum.bytes += f.size;
        break;
      }
    }
  }
  // Directory times last (restoring their contents changed them), deepest first.
  for (auto it = m.files.rbegin(); it != m.files.rend(); ++it) {
    if (it->type == FileType::kDir) LM_RETURN_IF_ERROR(SetAttributes(JoinPath(dest, it->path), *it, false));
  }
  progress.done_bytes = done;
  if (o.progress) o.progress(progress);
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return sum;
}

}  // namespace lm

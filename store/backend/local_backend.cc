#include "store/backend/local_backend.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace lm {

namespace {

constexpr size_t kWriteBuffer = 4 << 20;
// Immutable objects: owner read-only (root, as most media agents run, ignores it).
constexpr mode_t kObjectMode = 0400;

// An interrupted writer's temporary file: ".<base>.tmp-<hex>" now; from earlier versions
// packs "<id>.pack.tmp", index files "<id>.idx.tmp-<hex>" and backup folders ".tmp-<hex>".
bool IsPartialEntry(const std::string& n, bool is_dir) {
  if (n.empty() || n[0] == '.') return true;
  if (is_dir) return false;  // a VM may well be called "x.tmp-1"
  return (n.size() > 9 && n.compare(n.size() - 9, 9, ".pack.tmp") == 0) ||
         n.find(".idx.tmp-") != std::string::npos;
}

// Opens an object for reading: never through a symlink, never blocking on a FIFO
// planted in a shared repository, and only if it is a regular file.
Result<UniqueFd> OpenObject(Env* env, const std::string& path, uint64_t* size) {
  LM_ASSIGN_OR_RETURN(UniqueFd fd, env->Open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, path);
  if (!S_ISREG(st.st_mode)) return Status::Corrupt(path + ": not a regular file");
  if (size) *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

class LocalWriter : public ObjectWriter {
 public:
  LocalWriter(Env* env, std::string final_path, std::string tmp_path, UniqueFd fd)
      : env_(env), final_(std::move(final_path)), tmp_(std::move(tmp_path)), fd_(std::move(fd)) {}
  ~LocalWriter() override {
    if (!committed_) {
      fd_.reset();
      (void)env_->Remove(tmp_);  // an abandoned object never becomes visible
    }
  }

  Status Append(std::string_view data) override {
    if (committed_) return Status::Invalid(final_ + ": append after commit");
    buf_.append(data.data(), data.size());
    return buf_.size() >= kWriteBuffer ? Flush() : Status::Ok();
  }

  Status Commit() override {
    if (committed_) return Status::Invalid(final_ + ": committed twice");
    LM_RETURN_IF_ERROR(Flush());
    LM_RETURN_IF_ERROR(env_->Fsync(fd_.get(), tmp_));
    fd_.reset();
    LM_RETURN_IF_ERROR(env_->RenameNoReplace(tmp_, final_));
    committed_ = true;
    return env_->FsyncDir(DirName(final_));
  }

 private:
  Status Flush() {
    if (buf_.empty()) return Status::Ok();
    LM_RETURN_IF_ERROR(env_->PWrite(fd_.get(), buf_.data(), buf_.size(), written_, tmp_));
    // Start writeback now, so the disk works while the caller fills the rest and the
    // fsync at Commit() is short.
    ::sync_file_range(fd_.get(), static_cast<off_t>(written_), static_cast<off_t>(buf_.size()),
                      SYNC_FILE_RANGE_WRITE);
    written_ += buf_.size();
    buf_.clear();
    return Status::Ok();
  }

  Env* env_;
  std::string final_, tmp_;
  UniqueFd fd_;
  std::string buf_;
  uint64_t written_ = 0;
  bool committed_ = false;
};

class FlockLock : public BackendLock {
 public:
  explicit FlockLock(UniqueFd fd) : fd_(std::move(fd)) {}

 private:
  UniqueFd fd_;  // closing it releases the flock
};

}  // namespace

Status LocalBackendOptions::validate() const {
  if (max_open_files < 1) return Status::Invalid("local backend options: max_open_files < 1");
  return Status::Ok();
}

LocalBackend::LocalBackend(std::string root, Env* env, LocalBackendOptions options)
    : root_(std::move(root)), env_(env), options_(options) {}

std::string LocalBackend::Describe(const std::string& name) const { return JoinPath(root_, name); }

Status LocalBackend::PrepareNew() {
  if (root_.empty()) return Status::Invalid("no repository path given");
  if (PathExists(root_)) {
    if (!IsDirectory(root_)) return Status::Exists(root_ + ": exists and is not a directory");
    LM_ASSIGN_OR_RETURN(auto names, ListDir(root_));
    if (!names.empty()) {
      return Status::Exists(root_ + ": directory is not empty and is not a livemount repository");
    }
    return Status::Ok();
  }
  LM_RETURN_IF_ERROR(MkdirAll(root_));
  return env_->FsyncDir(DirName(AbsolutePath(root_)));
}

Status LocalBackend::MakeParents(const std::string& name) {
  std::string dir = root_;
  for (size_t start = 0, slash; (slash = name.find('/', start)) != std::string::npos; start = slash + 1) {
    std::string sub = JoinPath(dir, name.substr(start, slash - start));
    if (!IsDirectory(sub)) {
      if (::mkdir(sub.c_str(), 0700) != 0 && errno != EEXIST) {
        return Status::FromErrno(errno, "mkdir " + sub);
      }
      LM_RETURN_IF_ERROR(env_->FsyncDir(dir));  // the new folder survives a power loss
    }
    dir = sub;
  }
  return Status::Ok();
}

Status LocalBackend::Walk(const std::string& rel_dir, bool partial, std::vector<ObjectInfo>* out) {
  std::string dir = rel_dir.empty() ? root_ : JoinPath(root_, rel_dir);
  auto names = ListDir(dir);
  if (!names.ok()) {
    return names.status().code() == Code::kNotFound ? Status::Ok() : names.status();
  }
  for (const std::string& n : *names) {
    std::string rel = rel_dir.empty() ? n : rel_dir + "/" + n;
    struct stat st;
    if (::lstat(JoinPath(dir, n).c_str(), &st) != 0) continue;  // raced a delete
    if (IsPartialEntry(n, S_ISDIR(st.st_mode))) {
      if (partial) out->push_back({rel, static_cast<uint64_t>(st.st_size)});
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      LM_RETURN_IF_ERROR(Walk(rel, partial, out));
    } else if (S_ISREG(st.st_mode) && !partial) {
      out->push_back({rel, static_cast<uint64_t>(st.st_size)});
    }  // symlinks and devices are not objects: never followed, never listed
  }
  return Status::Ok();
}

namespace {
Status CheckPrefix(const std::string& prefix) {
  if (prefix.empty()) return Status::Ok();
  if (prefix.back() != '/' || !IsValidObjectName(std::string_view(prefix).substr(0, prefix.size() - 1))) {
    return Status::Invalid("invalid object prefix '" + prefix + "'");
  }
  return Status::Ok();
}
}  // namespace

Result<std::vector<ObjectInfo>> LocalBackend::List(const std::string& prefix) {
  LM_RETURN_IF_ERROR(CheckPrefix(prefix));
  std::vector<ObjectInfo> out;
  LM_RETURN_IF_ERROR(Walk(prefix.empty() ? "" : prefix.substr(0, prefix.size() - 1), false, &out));
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

Result<std::vector<std::string>> LocalBackend::ListPartial(const std::string& prefix) {
  LM_RETURN_IF_ERROR(CheckPrefix(prefix));
  std::vector<ObjectInfo> found;
  LM_RETURN_IF_ERROR(Walk(prefix.empty() ? "" : prefix.substr(0, prefix.size() - 1), true, &found));
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.name);
  std::sort(out.begin(), out.end());
  return out;
}

Status LocalBackend::DeletePartial(const std::string& name) {
  // Named by ListPartial: every component but the last is a valid name.
  size_t slash = name.find_last_of('/');
  std::string dir = slash == std::string::npos ? "" : name.substr(0, slash);
  std::string base = name.substr(slash == std::string::npos ? 0 : slash + 1);
  if ((!dir.empty() && !IsValidObjectName(dir)) || base.empty() || base == "." || base == ".." ||
      base.find('/') != std::string::npos) {
    return Status::Invalid("invalid partial object name '" + name + "'");
  }
  std::string path = Describe(name);
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? Status::Ok() : Status::FromErrno(errno, path);
  if (S_ISDIR(st.st_mode)) LM_RETURN_IF_ERROR(RemoveTree(path));  // a .tmp-* backup folder of old
  else LM_RETURN_IF_ERROR(env_->Remove(path));
  return env_->FsyncDir(DirName(path));
}

Result<std::shared_ptr<UniqueFd>> LocalBackend::ReadFd(const std::string& name) {
  if (!IsValidObjectName(name)) return Status::Invalid("invalid object name '" + name + "'");
  std::lock_guard lock(fd_mu_);
  auto it = open_.find(name);
  if (it != open_.end()) return it->second;
  LM_ASSIGN_OR_RETURN(UniqueFd fd, OpenObject(env_, Describe(name), nullptr));
  auto shared = std::make_shared<UniqueFd>(std::move(fd));
  if (open_.size() >= options_.max_open_files) {
    // Close the oldest; readers still holding its shared_ptr keep it open until done.
    open_.erase(lru_.front());
    lru_.pop_front();
  }
  open_.emplace(name, shared);
  lru_.push_back(name);
  return shared;
}

Result<uint64_t> LocalBackend::Size(const std::string& name) {
  if (!IsValidObjectName(name)) return Status::Invalid("invalid object name '" + name + "'");
  struct stat st;
  std::string path = Describe(name);
  if (::lstat(path.c_str(), &st) != 0) return Status::FromErrno(errno, path);
  if (!S_ISREG(st.st_mode)) return Status::Corrupt(path + ": not a regular file");
  return static_cast<uint64_t>(st.st_size);
}

Status LocalBackend::ReadRange(const std::string& name, uint64_t offset, size_t length,
                               std::string* out) {
  LM_ASSIGN_OR_RETURN(auto fd, ReadFd(name));
  out->resize(length);
  return env_->PReadExact(fd->get(), out->data(), length, offset, Describe(name));
}

Result<std::string> LocalBackend::ReadAll(const std::string& name) {
  if (!IsValidObjectName(name)) return Status::Invalid("invalid object name '" + name + "'");
  std::string path = Describe(name);
  uint64_t size = 0;
  LM_ASSIGN_OR_RETURN(UniqueFd fd, OpenObject(env_, path, &size));
  std::string data(size, '\0');
  LM_RETURN_IF_ERROR(env_->PReadExact(fd.get(), data.data(), data.size(), 0, path));
  return data;
}

Result<std::unique_ptr<ObjectWriter>> LocalBackend::NewWriter(const std::string& name) {
  if (!IsValidObjectName(name)) return Status::Invalid("invalid object name '" + name + "'");
  LM_RETURN_IF_ERROR(MakeParents(name));
  std::string final_path = Describe(name);
  std::string base = name.substr(name.find_last_of('/') + 1);
  std::string tmp = JoinPath(DirName(final_path), "." + base + ".tmp-" + RandomHex(8));
  LM_ASSIGN_OR_RETURN(UniqueFd fd,
                      env_->Open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, kObjectMode));
  return std::unique_ptr<ObjectWriter>(new LocalWriter(env_, final_path, tmp, std::move(fd)));
}

Status LocalBackend::Delete(const std::string& name) {
  if (!IsValidObjectName(name)) return Status::Invalid("invalid object name '" + name + "'");
  {
    std::lock_guard lock(fd_mu_);
    if (open_.erase(name)) lru_.remove(name);
  }
  std::string path = Describe(name);
  Status s = env_->Remove(path);
  if (s.code() == Code::kNotFound) return Status::Ok();
  LM_RETURN_IF_ERROR(s);
  LM_RETURN_IF_ERROR(env_->FsyncDir(DirName(path)));
  // Folders of one writer go with their last object: a backup copy's ("backups/<vm>/<id>",
  // its "files") and a lease holder's ("leases/<holder>"). Shallower ones stay: another
  // writer may be about to put something in them.
  std::string rel = name;
  size_t keep_depth = name.rfind("leases/", 0) == 0 ? 1 : 2;
  for (size_t slash; (slash = rel.find_last_of('/')) != std::string::npos;) {
    rel.resize(slash);
    if (size_t(std::count(rel.begin(), rel.end(), '/')) < keep_depth) break;
    if (::rmdir(Describe(rel).c_str()) != 0) break;  // not empty (or gone): stop
    LM_RETURN_IF_ERROR(env_->FsyncDir(DirName(Describe(rel))));
  }
  return Status::Ok();
}

Result<std::unique_ptr<BackendLock>> LocalBackend::Lock(LockMode mode) {
  const std::string name = "locks/repo.lock";
  LM_RETURN_IF_ERROR(MakeParents(name));
  std::string path = Describe(name);
  LM_ASSIGN_OR_RETURN(UniqueFd fd, env_->Open(path, O_RDWR | O_CREAT | O_NOFOLLOW, 0600));
  // Backups wait for maintenance to finish; maintenance never waits behind backups.
  int op = mode == LockMode::kShared ? LOCK_SH : LOCK_EX | LOCK_NB;
  if (::flock(fd.get(), op) != 0) {
    if (errno == EWOULDBLOCK) return Status::Busy(root_ + ": a backup is running (repository locked)");
    return Status::FromErrno(errno, "lock " + path);
  }
  return std::unique_ptr<BackendLock>(new FlockLock(std::move(fd)));
}

}  // namespace lm

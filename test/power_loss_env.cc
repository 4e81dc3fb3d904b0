#include "test/power_loss_env.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace lm::test {

void PowerLossEnv::FailAfter(int ops) {
  std::lock_guard lock(mu_);
  fail_after_ = ops;
}

Status PowerLossEnv::Admit(const std::string& path) {
  std::lock_guard lock(mu_);
  if (fail_after_ == 0) return Status::IoError(path + ": injected power loss");
  if (fail_after_ > 0) fail_after_--;
  mutations_++;
  return Status::Ok();
}

Status PowerLossEnv::Record(int fd, const std::string& path, uint64_t off, uint64_t len) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, path);
  Undo u;
  u.off = off;
  u.old_size = st.st_size;
  uint64_t have = off < uint64_t(st.st_size) ? std::min<uint64_t>(len, st.st_size - off) : 0;
  u.old_bytes.resize(have);
  if (have && ::pread(fd, u.old_bytes.data(), have, static_cast<off_t>(off)) != static_cast<ssize_t>(have)) {
    return Status::FromErrno(errno, path);
  }
  std::lock_guard lock(mu_);
  undo_[path].push_back(std::move(u));
  return Status::Ok();
}

Status PowerLossEnv::PWrite(int fd, const void* buf, size_t n, uint64_t off, const std::string& path) {
  LM_RETURN_IF_ERROR(Admit(path));
  LM_RETURN_IF_ERROR(Record(fd, path, off, n));
  return Env::PWrite(fd, buf, n, off, path);
}

Status PowerLossEnv::Truncate(int fd, uint64_t size, const std::string& path) {
  LM_RETURN_IF_ERROR(Admit(path));
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, path);
  LM_RETURN_IF_ERROR(Record(fd, path, size, st.st_size > int64_t(size) ? st.st_size - size : 0));
  return Env::Truncate(fd, size, path);
}

Status PowerLossEnv::PunchHole(int fd, uint64_t off, uint64_t len, const std::string& path) {
  LM_RETURN_IF_ERROR(Admit(path));
  LM_RETURN_IF_ERROR(Record(fd, path, off, len));
  return Env::PunchHole(fd, off, len, path);
}

Status PowerLossEnv::Fsync(int fd, const std::string& path) {
  LM_RETURN_IF_ERROR(Admit(path));
  LM_RETURN_IF_ERROR(Env::Fsync(fd, path));
  std::lock_guard lock(mu_);
  undo_.erase(path);
  return Status::Ok();
}

Status PowerLossEnv::SyncData(int fd, const std::string& path) {
  LM_RETURN_IF_ERROR(Admit(path));
  LM_RETURN_IF_ERROR(Env::SyncData(fd, path));
  std::lock_guard lock(mu_);
  undo_.erase(path);
  return Status::Ok();
}

Status PowerLossEnv::Rename(const std::string& from, const std::string& to) {
  LM_RETURN_IF_ERROR(Admit(from));
  LM_RETURN_IF_ERROR(Env::Rename(from, to));
  MoveUndo(from, to);
  return Status::Ok();
}

Status PowerLossEnv::RenameNoReplace(const std::string& from, const std::string& to) {
  LM_RETURN_IF_ERROR(Admit(from));
  LM_RETURN_IF_ERROR(Env::RenameNoReplace(from, to));
  MoveUndo(from, to);
  return Status::Ok();
}

Status PowerLossEnv::Remove(const std::string& path) {
  LM_RETURN_IF_ERROR(Admit(path));
  LM_RETURN_IF_ERROR(Env::Remove(path));
  std::lock_guard lock(mu_);
  undo_.erase(path);
  return Status::Ok();
}

void PowerLossEnv::MoveUndo(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  auto it = undo_.find(from);  // unsynced changes travel with the file
  if (it != undo_.end()) {
    undo_[to] = std::move(it->second);
    undo_.erase(from);
  } else {
    undo_.erase(to);
  }
}

void PowerLossEnv::WrittenBack() {
  std::lock_guard lock(mu_);
  undo_.clear();
}

void PowerLossEnv::DropUnsynced() {
  std::lock_guard lock(mu_);
  for (auto& [path, list] : undo_) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;  // removed since: nothing to restore
    for (auto u = list.rbegin(); u != list.rend(); ++u) {
      if (!u->old_bytes.empty()) (void)!::pwrite(fd, u->old_bytes.data(), u->old_bytes.size(), static_cast<off_t>(u->off));
      (void)!::ftruncate(fd, static_cast<off_t>(u->old_size));
    }
    ::close(fd);
  }
  undo_.clear();
  fail_after_ = -1;
}

}  // namespace lm::test

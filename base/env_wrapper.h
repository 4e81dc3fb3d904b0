// Env decorators. EnvWrapper forwards every primitive to another Env, so a test or a
// benchmark overrides only what it changes (LevelDB's EnvWrapper). The helpers of Env
// (PReadExact, ReadFile, WriteFileAtomic) are built on the primitives, so a decorator's
// PRead is seen by them too.
#pragma once

#include <string>

#include "base/env.h"

namespace lm {

class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Env* target() const { return target_; }

  Result<UniqueFd> Open(const std::string& path, int flags, mode_t mode = 0600) override {
    return target_->Open(path, flags, mode);
  }
  Status PRead(int fd, void* buf, size_t n, uint64_t off, size_t* got, const std::string& path) override {
    return target_->PRead(fd, buf, n, off, got, path);
  }
  Status PWrite(int fd, const void* buf, size_t n, uint64_t off, const std::string& path) override {
    return target_->PWrite(fd, buf, n, off, path);
  }
  Status Fsync(int fd, const std::string& path) override { return target_->Fsync(fd, path); }
  Status SyncData(int fd, const std::string& path) override { return target_->SyncData(fd, path); }
  Status Truncate(int fd, uint64_t size, const std::string& path) override { return target_->Truncate(fd, size, path); }
  Status PunchHole(int fd, uint64_t off, uint64_t len, const std::string& path) override {
    return target_->PunchHole(fd, off, len, path);
  }
  Status Rename(const std::string& from, const std::string& to) override { return target_->Rename(from, to); }
  Status RenameNoReplace(const std::string& from, const std::string& to) override {
    return target_->RenameNoReplace(from, to);
  }
  Status Remove(const std::string& path) override { return target_->Remove(path); }
  Status FsyncDir(const std::string& dir) override { return target_->FsyncDir(dir); }
  int64_t NowMicros() override { return target_->NowMicros(); }

 private:
  Env* target_;
};

// Slow secondary storage, for tests and benchmarks: every read of a file whose path
// contains `path_part` ("/packs/": the repository's chunks) first sleeps `ms`.
class DelayedReadEnv : public EnvWrapper {
 public:
  DelayedReadEnv(Env* target, uint32_t ms, std::string path_part)
      : EnvWrapper(target), ms_(ms), part_(std::move(path_part)) {}
  Status PRead(int fd, void* buf, size_t n, uint64_t off, size_t* got, const std::string& path) override;

 private:
  uint32_t ms_;
  std::string part_;
};

}  // namespace lm

// The repository in a local (or NFS-mounted) directory: an object is a file at
// ROOT/<name>, written as ROOT/<dir>/.<base>.tmp-<random>, fsynced, renamed into place
// without replacing (renameat2 RENAME_NOREPLACE, or link() where that is missing), and its
// directory fsynced. Every file access goes through the Env, so tests inject faults and
// power loss. Locks are flock() on ROOT/locks/repo.lock.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/env.h"
#include "store/backend/backend.h"

namespace lm {

struct LocalBackendOptions {
  size_t max_open_files = 128;  // read descriptors kept open (packs are read again and again)
  Status validate() const;
};

class LocalBackend : public Backend {
 public:
  LocalBackend(std::string root, Env* env, LocalBackendOptions options = {});

  const std::string& location() const override { return root_; }
  std::string Describe(const std::string& name) const override;
  Status PrepareNew() override;
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override;
  Result<std::vector<std::string>> ListPartial(const std::string& prefix) override;
  Status DeletePartial(const std::string& name) override;
  Result<uint64_t> Size(const std::string& name) override;
  Status ReadRange(const std::string& name, uint64_t offset, size_t length, std::string* out) override;
  Result<std::string> ReadAll(const std::string& name) override;
  Result<std::unique_ptr<ObjectWriter>> NewWriter(const std::string& name) override;
  Status Delete(const std::string& name) override;
  Result<std::unique_ptr<BackendLock>> Lock(LockMode mode) override;

  Env* env() const { return env_; }
  // Creates the folders above `name` that are missing, each made durable in its parent.
  Status MakeParents(const std::string& name);

 private:
  Result<std::shared_ptr<UniqueFd>> ReadFd(const std::string& name);
  Status Walk(const std::string& rel_dir, bool partial, std::vector<ObjectInfo>* out);

  std::string root_;
  Env* env_;
  LocalBackendOptions options_;
  std::mutex fd_mu_;
  std::unordered_map<std::string, std::shared_ptr<UniqueFd>> open_;
  std::list<std::string> lru_;  // oldest first
};

}  // namespace lm

#include "test/rocks_fault_fs.h"

#include <unistd.h>

#include <algorithm>

namespace lm::test {

namespace {

class FaultFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultFile(std::unique_ptr<rocksdb::FSWritableFile> f, RocksFaultFs* fs, std::string name)
      : FSWritableFileOwnerWrapper(std::move(f)), fs_(fs), name_(std::move(name)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           rocksdb::IODebugContext* dbg) override {
    auto s = target()->Append(data, o, dbg);
    if (s.ok()) fs_->Appended(name_, data.size());
    return s;
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           const rocksdb::DataVerificationInfo& v, rocksdb::IODebugContext* dbg) override {
    auto s = target()->Append(data, o, v, dbg);
    if (s.ok()) fs_->Appended(name_, data.size());
    return s;
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    fs_->WaitAtGate();
    auto s = target()->Sync(o, dbg);
    if (s.ok()) fs_->Synced(name_);
    return s;
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    fs_->WaitAtGate();
    auto s = target()->Fsync(o, dbg);
    if (s.ok()) fs_->Synced(name_);
    return s;
  }
  rocksdb::IOStatus RangeSync(uint64_t, uint64_t, const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();  // a hint only: nothing is durable by it
  }

 private:
  RocksFaultFs* fs_;
  std::string name_;
};

}  // namespace

RocksFaultFs::RocksFaultFs() : FileSystemWrapper(rocksdb::FileSystem::Default()) {
  // The composite Env shares ownership of this object through a non-owning pointer.
  env_ = rocksdb::NewCompositeEnv(std::shared_ptr<rocksdb::FileSystem>(this, [](rocksdb::FileSystem*) {}));
}

rocksdb::IOStatus RocksFaultFs::NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                                std::unique_ptr<rocksdb::FSWritableFile>* r,
                                                rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> base;
  auto s = target()->NewWritableFile(f, o, &base, dbg);
  if (!s.ok()) return s;
  {
    std::lock_guard lock(mu_);
    files_[f] = Sizes{};
  }
  r->reset(new FaultFile(std::move(base), this, f));
  return s;
}

rocksdb::IOStatus RocksFaultFs::ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                                   std::unique_ptr<rocksdb::FSWritableFile>* r,
                                                   rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> base;
  auto s = target()->ReopenWritableFile(f, o, &base, dbg);
  if (!s.ok()) return s;
  uint64_t size = 0;
  (void)target()->GetFileSize(f, rocksdb::IOOptions(), &size, dbg);
  {
    std::lock_guard lock(mu_);
    files_[f] = Sizes{size, size};  // what was there before counts as synced
  }
  r->reset(new FaultFile(std::move(base), this, f));
  return s;
}

void RocksFaultFs::Appended(const std::string& name, uint64_t n) {
  std::lock_guard lock(mu_);
  files_[name].written += n;
}

void RocksFaultFs::Synced(const std::string& name) {
  std::lock_guard lock(mu_);
  files_[name].synced = files_[name].written;
}

void RocksFaultFs::DropUnsynced(uint64_t torn) {
  std::lock_guard lock(mu_);
  for (auto& [name, sizes] : files_) {
    uint64_t keep = std::min(sizes.written, sizes.synced + torn);
    if (sizes.written > keep) (void)!::truncate(name.c_str(), static_cast<off_t>(keep));
    sizes.written = sizes.synced = keep;
  }
}

void RocksFaultFs::CloseGate() {
  std::lock_guard lock(mu_);
  gate_closed_ = true;
}

void RocksFaultFs::OpenGate() {
  {
    std::lock_guard lock(mu_);
    gate_closed_ = false;
  }
  cv_.notify_all();
}

int RocksFaultFs::syncs_waiting() {
  std::lock_guard lock(mu_);
  return waiting_;
}

void RocksFaultFs::WaitAtGate() {
  std::unique_lock lock(mu_);
  waiting_++;
  cv_.wait(lock, [&] { return !gate_closed_; });
  waiting_--;
}

}  // namespace lm::test

// A RocksDB FileSystem for tests of the overlay store and the inode index, whose RocksDB
// databases do not go through lm::Env. Like PowerLossEnv (power_loss_env.h) it remembers,
// per file, how much was synced: DropUnsynced() cuts every file back to that (a power loss,
// with the database closed first). Syncs can also be held at a gate, to show that nobody
// else waits for a slow fsync.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace lm::test {

class RocksFaultFs : public rocksdb::FileSystemWrapper {
 public:
  RocksFaultFs();
  static const char* kClassName() { return "LivemountRocksFaultFs"; }
  const char* Name() const override { return kClassName(); }
  // The Env to put in rocksdb::Options (lives as long as this object).
  rocksdb::Env* env() { return env_.get(); }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override;

  // Truncates every file written through this object to its last synced size, plus up to
  // `torn` bytes of what followed (a write the disk had half done).
  void DropUnsynced(uint64_t torn = 0);
  // While closed, every sync waits at the gate; Open() lets them through.
  void CloseGate();
  void OpenGate();
  int syncs_waiting();

  // Called by the files (not for tests).
  void Appended(const std::string& name, uint64_t n);
  void Synced(const std::string& name);
  void WaitAtGate();

 private:
  std::unique_ptr<rocksdb::Env> env_;
  std::mutex mu_;
  std::condition_variable cv_;
  struct Sizes {
    uint64_t written = 0, synced = 0;
  };
  std::map<std::string, Sizes> files_;
  bool gate_closed_ = false;
  int waiting_ = 0;
};

}  // namespace lm::test

// A test Env that simulates power loss, which SIGKILL cannot (the page cache survives a
// killed process): it remembers what every write, truncate and hole punch replaced since
// the file's last sync, and DropUnsynced() puts all of it back, as if the machine had lost
// power at that moment. FailAfter(n) makes every mutating call after the next n fail, so a
// test can stop a component at every step of an operation, then drop what was not synced.
// Directory entries (create, rename) are taken as durable when they happen.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "base/env.h"

namespace lm::test {

class PowerLossEnv : public Env {
 public:
  Status PWrite(int fd, const void* buf, size_t n, uint64_t off, const std::string& path) override;
  Status Truncate(int fd, uint64_t size, const std::string& path) override;
  Status PunchHole(int fd, uint64_t off, uint64_t len, const std::string& path) override;
  Status Fsync(int fd, const std::string& path) override;
  Status SyncData(int fd, const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status RenameNoReplace(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;

  // Every later mutating call fails (IoError) once `ops` more have run; -1: never.
  void FailAfter(int ops);
  // Restores every file to its state at its last sync, and clears the failure.
  void DropUnsynced();
  // Takes everything written so far as durable (the kernel wrote its page cache back).
  void WrittenBack();
  uint64_t mutations() const { return mutations_; }

 private:
  struct Undo {
    uint64_t off = 0;
    std::string old_bytes;  // what [off, off + old_bytes.size()) held
    uint64_t old_size = 0;  // the file's size before the change
  };
  Status Admit(const std::string& path);  // counts a mutation; fails once dead
  void MoveUndo(const std::string& from, const std::string& to);  // unsynced changes travel
  Status Record(int fd, const std::string& path, uint64_t off, uint64_t len);
  std::mutex mu_;
  std::map<std::string, std::vector<Undo>> undo_;  // by path, oldest first
  int fail_after_ = -1;
  uint64_t mutations_ = 0;
};

}  // namespace lm::test

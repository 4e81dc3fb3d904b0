// Env: the store's only door to files and clocks. Production uses Env::Default() (POSIX);
// tests subclass Env to inject faults (failing writes, short reads, slow reads).
// Every error message names the file it is about.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace lm {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

class Env {
 public:
  virtual ~Env() = default;
  static Env* Default();

  // New files are owner-only by default: everything livemount writes holds VM data.
  virtual Result<UniqueFd> Open(const std::string& path, int flags, mode_t mode = 0600);
  // Reads exactly n bytes at off; a short read is Corrupt ("truncated").
  Status PReadExact(int fd, void* buf, size_t n, uint64_t off, const std::string& path);
  // Reads up to n bytes; *got is what was read (0 at end of file).
  virtual Status PRead(int fd, void* buf, size_t n, uint64_t off, size_t* got,
                       const std::string& path);
  virtual Status PWrite(int fd, const void* buf, size_t n, uint64_t off, const std::string& path);
  virtual Status Fsync(int fd, const std::string& path);
  // fdatasync: the bytes (and the size), not every attribute.
  virtual Status SyncData(int fd, const std::string& path);
  // ftruncate, and fallocate(PUNCH_HOLE | KEEP_SIZE): the other ways file bytes change.
  virtual Status Truncate(int fd, uint64_t size, const std::string& path);
  virtual Status PunchHole(int fd, uint64_t off, uint64_t len, const std::string& path);
  virtual Status Rename(const std::string& from, const std::string& to);
  // Renames only if `to` does not exist (Exists otherwise): how a write-once object commits.
  virtual Status RenameNoReplace(const std::string& from, const std::string& to);
  // Unlinks a file; a missing one is NotFound.
  virtual Status Remove(const std::string& path);
  virtual Status FsyncDir(const std::string& dir);
  virtual int64_t NowMicros();

  // Helpers built on the primitives above.
  Result<std::string> ReadFile(const std::string& path);
  // Writes to a temporary name beside path, fsyncs, renames over path, fsyncs the directory:
  // readers see the old bytes or the new bytes, never a mix.
  Status WriteFileAtomic(const std::string& path, std::string_view data);
};

// Plain filesystem helpers (not behind Env: they do not move data).
Status MkdirAll(const std::string& path, mode_t mode = 0700);
Status RemoveTree(const std::string& path);  // rm -rf; a missing path is fine
bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);
Result<std::vector<std::string>> ListDir(const std::string& dir);  // names, sorted, no . and ..
// The same for an open directory (`shown` names it in errors); the descriptor stays open.
Result<std::vector<std::string>> ListDirAt(int dirfd, const std::string& shown);
std::string DirName(const std::string& path);
std::string AbsolutePath(const std::string& path);  // realpath, or `path` if that fails
std::string JoinPath(const std::string& a, const std::string& b);
// True while the process runs; a zombie waiting for its reaper counts as gone.
bool ProcessAlive(pid_t pid);
// When the process started, in clock ticks since boot (/proc/PID/stat); 0 if it is gone.
// With the pid it names one process for good: a later process may reuse the pid, not both.
uint64_t ProcessStartTime(pid_t pid);
// This machine's name (gethostname), as backups and leases record it.
std::string HostName();
// A random lowercase hex string of 2*bytes characters (from /dev/urandom).
std::string RandomHex(size_t bytes);

}  // namespace lm

// InodeIndex: where each inode number the mount has handed out lives, kept in
// STATE/inodes (RocksDB), so that a file handle outlives the daemon.
//
// NFS servers (nfs-ganesha's FSAL VFS, the kernel's nfsd) give clients handles made of the
// FUSE node id and its generation. After the media agent restarts, the kernel asks the
// new daemon to look up "." in a node it has never seen; the index answers with the
// node's parent and name, and the namespace walks there from the root.
//
// Record: key "i" + u64(ino) -> u64(parent) + u32(generation) + name (little-endian). A path keeps its
// inode number for good (a rename moves the record); a new file that lands on a number
// used before gets the next generation, so a handle to the old file is stale, not wrong.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace rocksdb {
class DB;
class Env;
}

namespace lm {

struct InodeRecord {
  uint64_t parent = 0;
  uint32_t generation = 1;
  std::string name;
};

class InodeIndex {
 public:
  // `rocks_env`: as for OverlayStore::Open (tests simulate power loss with one).
  static Result<std::unique_ptr<InodeIndex>> Open(const std::string& state_dir,
                                                  rocksdb::Env* rocks_env = nullptr);
  ~InodeIndex();

  // Nullopt if the number was never handed out (or the record is damaged; logged).
  std::optional<InodeRecord> Get(uint64_t ino) const;
  // Writes records in one batch. Not synced: a process kill keeps them (WAL), and after a
  // power loss the numbers are recomputed the same way from the paths.
  Status Put(const std::vector<std::pair<uint64_t, InodeRecord>>& records);

 private:
  InodeIndex() = default;
  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace lm

// OverlayStore: the namespace side of the per-backup overlays, kept in the media agent's
// state directory:
//   STATE/overlay-meta/            RocksDB: one entry per changed path of each backup copy
//   STATE/overlays/<vm>/<id>/      that backup's OverlayFile data (<fid>.data, .journal)
// Key "e/<vm>/<id>/" + path -> entry (JSON). An entry either replaces what the backup has
// at that path (a file, directory or symlink with its own attributes, optionally taking its
// bytes from a backed-up file and/or an OverlayFile), or is a whiteout that hides the
// backup's path and everything below it. Entries also carry extended attributes, and the
// type and device number of FIFOs, sockets and device nodes (base/state_layout.h owns
// the paths). Namespace changes are written with sync=true, so
// they survive a crash as soon as the call returns.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/repository.h"

namespace rocksdb {
class DB;
class Env;
}

namespace lm {

struct OverlayEntry {
  bool whiteout = false;
  char type = 'f';  // 'f' file, 'd' directory, 'l' symlink, 'p' FIFO, 's' socket, 'c'/'b' device
  uint32_t mode = 0, uid = 0, gid = 0;
  int64_t atime_ns = 0, mtime_ns = 0, ctime_ns = 0;
  uint64_t ino = 0;
  int base_index = -1;  // file whose backed-up bytes show through (into the manifest)
  uint64_t base_size = 0;
  std::string view;     // or: the view (guest/copy_views.h) whose bytes show through, by name
  std::string fid;      // OverlayFile id, "" if none
  std::string target;   // symlinks
  bool opaque = false;  // directories: the backup's contents at this path are hidden
  uint64_t rdev = 0;    // devices
  bool hardlink = false;  // one of several names of inode `ino`: entries with it are one node
  std::map<std::string, std::string> xattrs;  // extended attributes, name -> value (bytes)
};

struct OverlayInfo {
  BackupRef backup;
  uint64_t entries = 0;
  uint64_t bytes = 0;  // allocated by its data files
};

class OverlayStore {
 public:
  // `rocks_env`: the RocksDB Env to use (tests pass one that delays or drops syncs);
  // null for RocksDB's default.
  static Result<std::unique_ptr<OverlayStore>> Open(const std::string& state_dir,
                                                    rocksdb::Env* rocks_env = nullptr);
  ~OverlayStore();

  std::string DataDir(const BackupRef& b) const;
  Result<std::vector<std::pair<std::string, OverlayEntry>>> Entries(const BackupRef& b);
  // Applies puts (entry) and deletes (nullopt) atomically.
  Status Apply(const BackupRef& b,
               const std::vector<std::pair<std::string, std::optional<OverlayEntry>>>& changes,
               bool sync);
  // Drops every entry and data file of one backup copy.
  Status Discard(const BackupRef& b);
  // The backup copies that have overlays, with their sizes (from the data directories).
  static Result<std::vector<OverlayInfo>> Scan(const std::string& state_dir);

 private:
  OverlayStore() = default;
  std::string state_dir_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace lm

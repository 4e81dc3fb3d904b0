// LiveFs: the FUSE low-level filesystem of the media agent, and the one façade the FUSE
// callbacks (fuse_ops.cc, which adapts it to libfuse; no exception crosses them) and the
// media agent use. It owns the namespace (whose lock stays inside it) and the read path.
//
// Reads of a backed-up file go to the ChunkSource (cache, then repository). Each open file
// tracks whether it is read sequentially; if so, read-ahead queues the next chunks, with a
// window that doubles from 4 chunks up to `readahead_chunks`.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>
#include <string>

#include "base/histogram.h"
#include "cache/chunk_source.h"
#include "fs/namespace.h"

namespace lm {

struct LiveFsOptions {
  uint32_t readahead_chunks = 32;  // 0 disables read-ahead
  OverlayStore* overlays = nullptr;  // null: read-only mount
  InodeIndex* inodes = nullptr;      // null: inode numbers are not recorded
  // Overlays and traces (STATE/traces/<vm>/) live here, so statfs reports its free space;
  // "" records no traces.
  std::string state_dir;
  std::string record_reads;          // benchmark option: log every read ("vm@id:path off len")
  // Called (synchronously) when a backup copy gets its first open file, before the open
  // returns: the media agent records its hold in the repository (store/leases.h).
  std::function<void(const BackupRef&)> on_first_open;
  // Called when a copy's last open file closes (the hold may end).
  std::function<void(const BackupRef&)> on_last_close;
  // Cross-hypervisor views (guest/copy_views.h) in every copy directory. `mountpoint`, the
  // mount's absolute path, lets the generated libvirt domains name their disks.
  bool views = true;
  std::string mountpoint;
  std::string domain_type = "kvm";  // of generated domains: "qemu" where there is no KVM
  Status validate() const;
};

struct OpenFile {
  std::shared_ptr<Node> node;
  std::shared_ptr<const FileChunks> chunks;
  std::shared_ptr<ViewReader> view;  // a view's bytes, when it is one
  std::string what;  // "vm@id:path" for logs and errors
  std::mutex mu;
  uint64_t next_off = 0;
  uint64_t ra_until = 0;  // chunks below this index were already queued
  uint32_t ra_window = 0;
};

// A regular file of a backup copy as the mount shows it now, against the copy it was
// mounted from (backup --from-mount reuses the chunks nobody wrote to).
struct FileChange {
  std::string path;         // inside the copy, '/'-separated
  uint64_t size = 0;        // now
  int base_index = -1;      // the manifest's file whose bytes show through; -1: none
  uint64_t base_size = 0;   // that file's size
  uint64_t base_limit = 0;  // below this offset, bytes not written come from that file
  std::vector<std::pair<uint64_t, uint64_t>> written;  // byte ranges the overlay holds
};
struct CopyChanges {
  uint64_t generation = 0;  // BackupTree::changes when the list was made
  std::vector<FileChange> files;
};

struct FsCounters {
  std::atomic<uint64_t> read_requests{0}, read_bytes{0}, read_errors{0}, opens{0};
  std::atomic<uint64_t> write_requests{0}, write_bytes{0};
  LatencyHistogram read_latency;  // each read a guest asked for, as the daemon served it
};

class LiveFs {
 public:
  LiveFs(Repository& repo, ChunkSource& source, LiveFsOptions options);
  ~LiveFs();

  ChunkSource& source() { return source_; }
  const LiveFsOptions& options() const { return options_; }
  FsCounters& counters() { return counters_; }

  // --- names (namespace.h) ---
  bool writable() const { return ns_.writable(); }
  Result<std::shared_ptr<Node>> Lookup(Ino parent, const std::string& name) { return ns_.Lookup(parent, name); }
  Result<std::shared_ptr<Node>> Get(Ino ino) { return ns_.Get(ino); }
  Result<std::shared_ptr<Node>> Resolve(Ino ino) { return ns_.Resolve(ino); }
  Result<std::vector<std::pair<std::string, std::shared_ptr<Node>>>> List(Ino dir) { return ns_.List(dir); }
  struct stat Stat(const Node& n) const { return ns_.Stat(n); }
  size_t NodeCount() const { return ns_.size(); }
  // Backup copies with open files now.
  std::vector<BackupRef> CopiesInUse() const { return ns_.CopiesInUse(); }
  std::vector<CopyUsage> CopyUsages() const { return ns_.CopyUsages(); }
  Result<std::shared_ptr<Node>> Create(Ino parent, const std::string& name, NodeKind kind, uint32_t mode,
                                       uint32_t uid, uint32_t gid, const std::string& target = "",
                                       dev_t rdev = 0) {
    return ns_.Create(parent, name, kind, mode, uid, gid, target, rdev);
  }
  Status Remove(Ino parent, const std::string& name, bool dir) { return ns_.Remove(parent, name, dir); }
  Status Rename(Ino parent, const std::string& name, Ino new_parent, const std::string& new_name, unsigned flags) {
    return ns_.Rename(parent, name, new_parent, new_name, flags);
  }
  Result<std::shared_ptr<Node>> Link(Ino ino, Ino new_parent, const std::string& new_name) {
    return ns_.Link(ino, new_parent, new_name);
  }
  Status SetXattr(Ino ino, const std::string& name, const std::string& value, int flags) {
    return ns_.SetXattr(ino, name, value, flags);
  }
  Result<std::string> GetXattr(Ino ino, const std::string& name) { return ns_.GetXattr(ino, name); }
  Result<std::vector<std::string>> ListXattr(Ino ino) { return ns_.ListXattr(ino); }
  Status RemoveXattr(Ino ino, const std::string& name) { return ns_.RemoveXattr(ino, name); }
  // Drops a backup copy's overlay (Busy while a file of it is open); the names whose kernel
  // cache entries must go.
  Result<std::vector<std::pair<Ino, std::string>>> Discard(const BackupRef& b) { return ns_.Discard(b); }
  // Every regular file of the copy and what of it the overlay holds (fs/copy_changes.cc).
  // `sync`: first makes every written byte and entry of the copy durable, as fsync would:
  // the list describes that consistent point.
  Result<CopyChanges> Changes(const BackupRef& b, bool sync);

  // --- files ---
  Result<std::unique_ptr<OpenFile>> Open(Ino ino);
  void Release(std::unique_ptr<OpenFile> f);
  // Reads up to `size` bytes at `off` into *out (shorter at the end of the file).
  Status Read(OpenFile& f, uint64_t off, size_t size, std::string* out);
  // The same into out[0, size); *got says how many bytes are there.
  Status ReadInto(OpenFile& f, uint64_t off, size_t size, char* out, size_t* got);
  Status Write(OpenFile& f, uint64_t off, const char* data, size_t len);
  // fsync/fdatasync: the file's bytes, then its entry, are durable on return.
  Status Fsync(Node& n);
  // Writes the first-touch traces recorded so far (at the last close and at unmount).
  void FlushTraces();
  // chmod, chown, utimens, truncate: the fields whose flag is set change.
  struct AttrChange {
    bool mode = false, uid = false, gid = false, size = false;
    bool atime = false, atime_now = false, mtime = false, mtime_now = false;
    struct stat values {};  // st_mode, st_uid, st_gid, st_size, st_atim, st_mtim
  };
  Status SetAttr(Ino ino, const AttrChange& change);
  // fallocate(2) on an open file: plain allocation (extends the size), KEEP_SIZE,
  // PUNCH_HOLE and ZERO_RANGE (the range reads as zeros; the backup is untouched).
  Status Fallocate(OpenFile& f, int mode, uint64_t off, uint64_t len);

 private:
  void MaybeReadAhead(OpenFile& f, uint64_t off, size_t len);
  RangeReader BaseOf(const std::shared_ptr<Node>& n, const std::string& what);
  void RecordTouch(Node& n, uint64_t off, size_t len);
  void RecordTouchAt(const std::shared_ptr<BackupTree>& tree, int file_index, uint64_t off, size_t len);
  // The views of a copy being loaded (fs/live_fs_views.cc).
  std::vector<std::shared_ptr<ViewReader>> PlanViews(const std::shared_ptr<BackupTree>& tree);
  void FlushTrace(BackupTree& tree);
  std::mutex traced_mu_;
  std::mutex record_mu_;
  FILE* record_ = nullptr;
  std::vector<std::shared_ptr<BackupTree>> traced_;

  Repository& repo_;
  ChunkSource& source_;
  LiveFsOptions options_;
  Namespace ns_;
  FsCounters counters_;
};

}  // namespace lm

// The mount's namespace: MOUNTPOINT/<vm>/<backup-id>/<files>, and <vm>/latest, a symlink to
// the newest backup copy. Nodes are created on first lookup and kept for the mount's life.
//
// Inside a backup directory the tree is the backup's manifest merged with its overlay
// (overlay_store.h): entries replace or add paths, whiteouts hide them. Every change is
// written to the overlay store before the call returns; file bytes go to OverlayFiles.
// The root and VM directories stay read-only (EROFS).
//
// Inode numbers are derived from the node's path (XXH3 of "vm/id/path"); a collision takes
// the next free number. With an InodeIndex every number handed out is recorded with its
// parent, name and generation, so Resolve() finds a node again after a restart of the
// daemon (NFS file handles carry only the number and the generation). The root and VM
// directories are rescanned at most once a second, so backups made while the mount runs
// appear. A backup directory's manifest is read on first use, a file's chunk list on open.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fs/inode_index.h"
#include "fs/overlay_file.h"
#include "profile/profile.h"
#include "fs/overlay_store.h"
#include "fs/view_reader.h"
#include "store/repository.h"

namespace lm {

using Ino = uint64_t;
inline constexpr Ino kRootIno = 1;

// kSpecial: a FIFO, socket or device node created in an overlay (its type is in st_mode;
// the mount is nodev, so a device node there never reaches a device).
enum class NodeKind { kRoot, kVmDir, kLatestLink, kBackupDir, kDir, kFile, kSymlink, kSpecial };

// st_mode type bits of a node inside a backup directory (not for kSpecial: see attr).
inline mode_t TypeBits(NodeKind k) {
  return k == NodeKind::kDir ? S_IFDIR : k == NodeKind::kSymlink ? S_IFLNK : S_IFREG;
}

// Set on every view (guest/copy_views.h): the backed-up file it shows.
inline constexpr const char* kViewXattr = "user.livemount.view";

// Longest name in a directory, as in every Linux filesystem (ENAMETOOLONG beyond).
inline constexpr size_t kMaxNameLength = 255;
// Extended attributes: the limits of the Linux VFS (XATTR_NAME_MAX, XATTR_SIZE_MAX).
inline constexpr size_t kMaxXattrName = 255;
inline constexpr size_t kMaxXattrValue = 65536;
inline struct timespec TimespecFromNs(int64_t ns) {
  return {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}
inline int64_t NsFromTimespec(const struct timespec& t) {
  return int64_t{t.tv_sec} * 1000000000 + t.tv_nsec;
}
inline struct timespec RealtimeNow() {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

// One loaded backup copy: its manifest and the chunk lists of files opened so far.
struct CopyUsage {
  BackupRef ref;
  int open_files = 0;
  uint64_t read_requests = 0, read_bytes = 0, write_requests = 0, write_bytes = 0;
  int64_t last_used_unix = 0;
};

struct BackupTree {
  BackupRef ref;
  // One change of this copy's tree at a time (create, remove, rename, link, persist, new
  // data): held across the change's synced overlay-store write, which the namespace lock
  // never is. Changes of other copies, and every lookup, go on meanwhile.
  std::mutex write_mu;
  BackupManifest manifest;
  std::unordered_map<std::string, int> base_paths;  // path -> index into manifest.files; -1: a view
  // The copy's cross-hypervisor views (guest/copy_views.h), shown as files beside its own.
  std::vector<std::shared_ptr<ViewReader>> views;
  std::mutex mu;
  std::unordered_map<size_t, std::shared_ptr<const FileChunks>> chunks;  // by file index
  std::atomic<int> open_files{0};
  // What guests did with this copy (metrics, and the idle time of expiry policies).
  std::atomic<uint64_t> read_requests{0}, read_bytes{0}, write_requests{0}, write_bytes{0};
  std::atomic<int64_t> last_used_unix{0};  // wall clock, s: the last open, read or write
  // Bumped by every change of the copy's bytes, names or attributes (not by a sync): a
  // reader of the whole copy (backup --from-mount) tells with it whether it changed meanwhile.
  std::atomic<uint64_t> changes{0};
  // First touches of this backup's chunks while mounted (for learned profiles).
  std::mutex trace_mu;
  std::unordered_set<uint64_t> touched;  // file index << 40 | chunk index
  Trace trace;
  int64_t trace_start_ms = -1;
  bool trace_dirty = false;
};

// One more name of a hard-linked node (its first name is Node::parent/name/rel).
struct NodeLink {
  Ino parent = 0;
  std::string name;
  std::string rel;
};

struct Node {
  Ino ino = 0, parent = 0;
  uint32_t generation = 1;  // bumped when a new file takes a number used before
  NodeKind kind = NodeKind::kRoot;
  std::string name;
  std::string vm;                      // VM dirs and everything below
  std::shared_ptr<BackupTree> backup;  // backup dirs and everything below
  int file_index = -1;                 // into backup->manifest.files
  int view_index = -1;                 // into backup->views: the view whose bytes show through
  std::string link_target;             // kLatestLink and kSymlink
  struct stat attr {};
  std::map<std::string, std::string> xattrs;  // extended attributes (backed up or set since)
  std::map<std::string, Ino> children;  // sorted: stable readdir offsets
  bool loaded = false;                  // children known
  int64_t scanned_ms = 0;               // root and VM dirs: last rescan
  // Inside a backup directory:
  std::string rel;                      // path inside the backup ("" for the backup dir)
  bool has_entry = false;               // the overlay has an entry at `rel`
  bool opaque = false;                  // directories: the backup's contents here are hidden
  uint64_t base_size = 0;               // size of the backed-up file behind it
  std::string fid;                      // its OverlayFile, once written
  std::shared_ptr<OverlayFile> data;
  int open_count = 0;
  bool unlinked = false;
  bool meta_dirty = false;              // attributes changed since the entry was written
  // Hard links: the node's other names (files, symlinks and special files only). Every
  // name has an overlay entry with the same content, marked as a link, so a reload joins
  // them again into this one node; st_nlink is 1 + more_links.size().
  std::vector<NodeLink> more_links;
};

// A file whose unwritten bytes come from the backup: a backed-up file's, or a view's.
inline bool HasBase(const Node& n) { return n.file_index >= 0 || n.view_index >= 0; }

class Namespace {
 public:
  // `store` null: every backup is read-only. `inodes` null: numbers are not recorded, so
  // only nodes looked up since the start resolve.
  Namespace(Repository& repo, OverlayStore* store, InodeIndex* inodes = nullptr);
  bool writable() const { return store_ != nullptr; }
  OverlayStore* store() { return store_; }

  // Children of `parent` named `name`; NotFound if none.
  Result<std::shared_ptr<Node>> Lookup(Ino parent, const std::string& name);
  Result<std::shared_ptr<Node>> Get(Ino ino);
  // Get, or, for a number handed out before a restart, the node found again by walking to
  // it through the inode index. NotFound if it no longer exists (a stale handle).
  Result<std::shared_ptr<Node>> Resolve(Ino ino);
  // The node's children in name order (after loading or rescanning them).
  Result<std::vector<std::pair<std::string, std::shared_ptr<Node>>>> List(Ino dir);
  // The chunk list of a file node, loaded once.
  Result<std::shared_ptr<const FileChunks>> Chunks(const Node& file);
  // The same by the file's index in the copy's manifest (loaded copies only).
  Result<std::shared_ptr<const FileChunks>> ChunksOf(BackupTree& tree, int index);
  // The copy's views (LiveFs sets this; none without it). Called once per copy while it
  // loads, its manifest and base_paths set, without the namespace lock (it reads files).
  using ViewPlanner = std::function<std::vector<std::shared_ptr<ViewReader>>(const std::shared_ptr<BackupTree>&)>;
  void SetViewPlanner(ViewPlanner p) { view_planner_ = std::move(p); }
  // Node count, for stats.
  size_t size() const;
  // Backup copies with open files now.
  std::vector<BackupRef> CopiesInUse() const;
  // Every backup copy whose tree is loaded (opened or listed since the mount started).
  std::vector<CopyUsage> CopyUsages() const;
  // A consistent copy of the node's attributes (a directory's st_nlink counts its
  // subdirectories, as on every POSIX filesystem).
  struct stat Stat(const Node& n) const;

  // --- changes (inside backup directories only) ---
  // `mode` carries the type bits for kSpecial; `rdev` is its device number.
  Result<std::shared_ptr<Node>> Create(Ino parent, const std::string& name, NodeKind kind,
                                       uint32_t mode, uint32_t uid, uint32_t gid,
                                       const std::string& target = "", dev_t rdev = 0);
  // Extended attributes of nodes inside backup directories: user.*, trusted.* and
  // security.* (others are ENOTSUP). `flags`: XATTR_CREATE / XATTR_REPLACE. Durable on return.
  Status SetXattr(Ino ino, const std::string& name, const std::string& value, int flags);
  Result<std::string> GetXattr(Ino ino, const std::string& name);
  Result<std::vector<std::string>> ListXattr(Ino ino);
  Status RemoveXattr(Ino ino, const std::string& name);
  Status Remove(Ino parent, const std::string& name, bool dir);
  // A new name for an existing non-directory node, in the same backup copy (link(2)).
  Result<std::shared_ptr<Node>> Link(Ino ino, Ino new_parent, const std::string& new_name);
  Status Rename(Ino parent, const std::string& name, Ino new_parent, const std::string& new_name,
                unsigned flags);
  // Writes the node's entry (attributes, data id) to the overlay store.
  Status Persist(Node& n, bool sync);
  // Opens or creates the node's OverlayFile (first write or truncate of a file).
  Result<std::shared_ptr<OverlayFile>> EnsureData(Node& n);
  // Called when the last handle of an unlinked file closes: frees its data.
  void Released(Node& n);
  // Drops a backup copy's overlay; Busy while a file of it is open. Returns the inos of the
  // backup directory's children, whose kernel cache entries must go.
  Result<std::vector<std::pair<Ino, std::string>>> Discard(const BackupRef& b);

  // --- attributes and handles of nodes the caller holds (under the namespace lock) ---
  // A file handle opens or closes; Closed says whether attributes changed since the last
  // Persist (then the caller makes them durable).
  void Opened(Node& n);
  bool Closed(Node& n);
  std::shared_ptr<OverlayFile> DataOf(const Node& n) const;
  // A file node's names and base, read under the namespace lock (renames and links run
  // beside the reader).
  struct FileNames {
    std::vector<std::string> rels;  // its first name, then its other hard links
    int file_index = -1;
    bool view = false;  // its bytes are a view's (written or not), not a backed-up file's
    uint64_t base_size = 0, size = 0;
    std::shared_ptr<OverlayFile> data;
  };
  FileNames NamesOf(const Node& n) const;
  // The file's bytes changed: size and times follow its overlay file; persisted later.
  void MarkModified(Node& n, uint64_t size);
  // Changes the node's attributes in place (chmod, chown, utimens, truncate).
  void UpdateAttr(Node& n, const std::function<void(struct stat&)>& change);

 private:
  Status Load(const std::shared_ptr<Node>& dir);  // fills or refreshes children
  Status ScanRoot(const std::shared_ptr<Node>& root);
  Status ScanVm(const std::shared_ptr<Node>& vm);
  Status LoadBackup(const std::shared_ptr<Node>& dir);
  // Under mu_. fresh: a new file. visible false: numbered and in nodes_, but not yet a
  // child of `parent` (a create whose entry is not durable yet); Attach() publishes it.
  std::shared_ptr<Node> AddChild(const std::shared_ptr<Node>& parent, const std::string& name,
                                 NodeKind kind, const std::string& key, bool fresh = false,
                                 bool visible = true);
  void Attach(const std::shared_ptr<Node>& parent, const std::shared_ptr<Node>& n);  // under mu_
  // Persist with the node's copy already locked (write_mu).
  Status PersistLocked(Node& n, bool sync);
  // Records the numbers of nodes added or moved since the last call; under mu_.
  void IndexPending();
  Result<std::shared_ptr<Node>> ResolveAt(Ino ino, int depth);
  Ino FreeIno(Ino from) const;  // the first unused inode number at or after `from`; under mu_
  Status ApplyOverlay(const std::shared_ptr<Node>& dir);                   // under mu_
  OverlayEntry EntryOf(const Node& n) const;
  Result<std::shared_ptr<Node>> WritableDir(Ino ino);                      // under mu_
  void Detach(const std::shared_ptr<Node>& n);                             // under mu_
  // The rel of the name (parent, name) of `n` (the first name or one of its links).
  std::string* RelSlot(Node& n, Ino parent, const std::string& name);
  // Drops the name (parent, name) of a node that has other names: changes for the store
  // into *changes; memory is updated by ForgetLink once the store has them.
  void UnlinkChanges(Node& n, Ino parent, const std::string& name, bool base_path,
                     std::vector<std::pair<std::string, std::optional<OverlayEntry>>>* changes);
  void ForgetLink(const std::shared_ptr<Node>& n, Ino parent, const std::string& name);

  // Adds the views as files (under mu_); `dirs`: the copy's directories by path.
  void AddViews(const std::shared_ptr<Node>& dir, const std::map<std::string, std::shared_ptr<Node>>& dirs,
                std::vector<std::shared_ptr<ViewReader>> views);
  Repository& repo_;
  OverlayStore* store_;
  ViewPlanner view_planner_;
  InodeIndex* inodes_;
  std::vector<std::pair<std::shared_ptr<Node>, bool>> unindexed_;  // (node, fresh); under mu_
  // Lock order (never take a lock to the left while holding one to its right):
  //   BackupTree::write_mu -> load_mu_ -> mu_ -> BackupTree::mu, BackupTree::trace_mu
  // mu_ guards nodes_ and every node's fields; it is never held across a synced write
  // (Discard, an administrator's command on an idle copy, is the one exception).
  mutable std::shared_mutex mu_;
  std::mutex load_mu_;  // one loader at a time: loads do I/O
  std::unordered_map<Ino, std::shared_ptr<Node>> nodes_;
  struct timespec mount_time_ {};
};

}  // namespace lm

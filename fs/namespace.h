// The mount's namespace: MOUNTPOINT/<vm>/<backup-id>/<files>, and <vm>/latest, a symlink to
// the newest backup copy. Nodes are created on first lookup and kept for the mount's life
// (the tree is backed by immutable manifests, so forget() has nothing to free).
//
// Inode numbers are derived from the node's path (XXH3 of "vm/id/path"), so they are the same
// after a restart of the daemon; a collision takes the next free number. The root and VM
// directories are rescanned at most once a second, so backups made while the mount runs
// appear. A backup directory's manifest is read on first use, a file's chunk list on open.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/repository.h"

namespace lm {

using Ino = uint64_t;
inline constexpr Ino kRootIno = 1;

enum class NodeKind { kRoot, kVmDir, kLatestLink, kBackupDir, kDir, kFile, kSymlink };

// One loaded backup copy: its manifest and the chunk lists of files opened so far.
struct BackupTree {
  BackupRef ref;
  BackupManifest manifest;
  std::mutex mu;
  std::unordered_map<size_t, std::shared_ptr<const FileChunks>> chunks;  // by file index
};

struct Node {
  Ino ino = 0, parent = 0;
  NodeKind kind = NodeKind::kRoot;
  std::string name;
  std::string vm;                      // VM dirs and everything below
  std::shared_ptr<BackupTree> backup;  // backup dirs and everything below
  int file_index = -1;                 // into backup->manifest.files
  std::string link_target;             // kLatestLink and kSymlink
  struct stat attr {};
  std::map<std::string, Ino> children;  // sorted: stable readdir offsets
  bool loaded = false;                  // children known
  int64_t scanned_ms = 0;               // root and VM dirs: last rescan
};

class Namespace {
 public:
  explicit Namespace(Repository& repo);

  // Children of `parent` named `name`; NotFound if none.
  Result<std::shared_ptr<Node>> Lookup(Ino parent, const std::string& name);
  Result<std::shared_ptr<Node>> Get(Ino ino);
  // The node's children in name order (after loading or rescanning them).
  Result<std::vector<std::pair<std::string, std::shared_ptr<Node>>>> List(Ino dir);
  // The chunk list of a file node, loaded once.
  Result<std::shared_ptr<const FileChunks>> Chunks(const Node& file);
  // Node count, for stats.
  size_t size() const;

 private:
  Status Load(const std::shared_ptr<Node>& dir);  // fills or refreshes children
  Status ScanRoot(const std::shared_ptr<Node>& root);
  Status ScanVm(const std::shared_ptr<Node>& vm);
  Status LoadBackup(const std::shared_ptr<Node>& dir);
  std::shared_ptr<Node> AddChild(const std::shared_ptr<Node>& parent, const std::string& name,
                                 NodeKind kind, const std::string& key);  // under mu_

  Repository& repo_;
  mutable std::shared_mutex mu_;  // guards nodes_ and every node's children/loaded fields
  std::mutex load_mu_;            // one loader at a time: loads do I/O
  std::unordered_map<Ino, std::shared_ptr<Node>> nodes_;
  struct timespec mount_time_ {};
};

}  // namespace lm

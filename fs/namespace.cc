#include "fs/namespace.h"

#include <xxhash.h>

#include <chrono>
#include <ctime>

#include "base/log.h"

namespace lm {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr int64_t kRescanMs = 1000;

void DirAttr(struct stat* st, const struct timespec& t) {
  st->st_mode = S_IFDIR | 0555;
  st->st_nlink = 2;
  st->st_mtim = st->st_ctim = st->st_atim = t;
  st->st_blksize = 4096;
}

}  // namespace

Namespace::Namespace(Repository& repo, OverlayStore* store, InodeIndex* inodes)
    : repo_(repo), store_(store), inodes_(inodes) {
  clock_gettime(CLOCK_REALTIME, &mount_time_);
  auto root = std::make_shared<Node>();
  root->ino = kRootIno;
  root->parent = kRootIno;
  root->kind = NodeKind::kRoot;
  DirAttr(&root->attr, mount_time_);
  root->attr.st_ino = kRootIno;
  nodes_[kRootIno] = root;
}

Ino Namespace::FreeIno(Ino ino) const {
  ino &= 0x7fffffffffffffffull;
  while (ino <= kRootIno || nodes_.count(ino)) ino = (ino + 1) & 0x7fffffffffffffffull;
  return ino;
}

std::shared_ptr<Node> Namespace::AddChild(const std::shared_ptr<Node>& parent,
                                          const std::string& name, NodeKind kind,
                                          const std::string& key, bool fresh, bool visible) {
  auto found = parent->children.find(name);
  if (found != parent->children.end()) return nodes_[found->second];
  Ino ino = FreeIno(XXH3_64bits(key.data(), key.size()));
  auto n = std::make_shared<Node>();
  n->ino = ino;
  n->parent = parent->ino;
  n->kind = kind;
  n->name = name;
  n->vm = parent->vm;
  n->backup = parent->backup;
  n->attr.st_ino = ino;
  nodes_[ino] = n;
  if (!visible) return n;
  parent->children[name] = ino;
  unindexed_.push_back({n, fresh});
  return n;
}

void Namespace::Attach(const std::shared_ptr<Node>& parent, const std::shared_ptr<Node>& n) {
  parent->children[n->name] = n->ino;
  unindexed_.push_back({n, true});
}

std::vector<BackupRef> Namespace::CopiesInUse() const {
  std::shared_lock lock(mu_);
  std::vector<BackupRef> out;
  for (auto& [ino, n] : nodes_) {
    if (n->kind == NodeKind::kBackupDir && n->backup && n->backup->open_files > 0) out.push_back(n->backup->ref);
  }
  return out;
}

std::vector<CopyUsage> Namespace::CopyUsages() const {
  std::shared_lock lock(mu_);
  std::vector<CopyUsage> out;
  for (auto& [ino, n] : nodes_) {
    if (n->kind != NodeKind::kBackupDir || !n->backup) continue;
    const BackupTree& t = *n->backup;
    out.push_back({t.ref, t.open_files.load(), t.read_requests.load(), t.read_bytes.load(), t.write_requests.load(),
                   t.write_bytes.load(), t.last_used_unix.load()});
  }
  return out;
}

void Namespace::Opened(Node& n) {
  std::unique_lock lock(mu_);
  n.open_count++;
}

bool Namespace::Closed(Node& n) {
  std::unique_lock lock(mu_);
  n.open_count--;
  return n.meta_dirty;
}

Namespace::FileNames Namespace::NamesOf(const Node& n) const {
  std::shared_lock lock(mu_);
  FileNames f;
  f.rels.push_back(n.rel);
  for (const NodeLink& l : n.more_links) f.rels.push_back(l.rel);
  f.file_index = n.file_index;
  f.view = n.view_index >= 0;
  f.base_size = HasBase(n) ? n.base_size : 0;
  f.size = static_cast<uint64_t>(n.attr.st_size);
  f.data = n.data;
  return f;
}

std::shared_ptr<OverlayFile> Namespace::DataOf(const Node& n) const {
  std::shared_lock lock(mu_);
  return n.data;
}

void Namespace::MarkModified(Node& n, uint64_t size) {
  struct timespec now = RealtimeNow();
  std::unique_lock lock(mu_);
  struct stat& st = n.attr;
  st.st_size = static_cast<off_t>(size);
  st.st_blocks = (st.st_size + 511) / 512;
  st.st_mtim = st.st_ctim = now;
  n.meta_dirty = true;  // the entry is written at the next fsync or close
}

void Namespace::UpdateAttr(Node& n, const std::function<void(struct stat&)>& change) {
  std::unique_lock lock(mu_);
  change(n.attr);
  n.meta_dirty = true;
}

void Namespace::IndexPending() {
  if (!inodes_) return unindexed_.clear();
  std::vector<std::pair<uint64_t, InodeRecord>> writes;
  for (auto& [n, fresh] : unindexed_) {
    if (n->unlinked) continue;
    auto rec = inodes_->Get(n->ino);
    if (rec && rec->parent == n->parent && rec->name == n->name && !fresh) {
      n->generation = rec->generation;  // seen before: the same file
      continue;
    }
    // A new file on a number used before invalidates old handles; a rename keeps them.
    n->generation = !rec ? 1 : fresh ? rec->generation + 1 : rec->generation;
    writes.push_back({n->ino, InodeRecord{n->parent, n->generation, n->name}});
  }
  unindexed_.clear();
  Status s = inodes_->Put(writes);
  if (!s.ok()) LogWarn("inode index: " + s.message() + " (NFS handles may go stale after a restart)");
}

Status Namespace::ScanRoot(const std::shared_ptr<Node>& root) {
  LM_ASSIGN_OR_RETURN(auto vms, repo_.ListVms());
  std::unique_lock lock(mu_);
  for (const std::string& vm : vms) {
    if (root->children.count(vm)) continue;
    auto n = AddChild(root, vm, NodeKind::kVmDir, vm);
    n->vm = vm;
    DirAttr(&n->attr, mount_time_);
    n->attr.st_ino = n->ino;
  }
  root->loaded = true;
  root->scanned_ms = NowMs();
  IndexPending();
  return Status::Ok();
}

Status Namespace::ScanVm(const std::shared_ptr<Node>& vmdir) {
  LM_ASSIGN_OR_RETURN(auto ids, repo_.ListBackupIds(vmdir->vm));
  std::unique_lock lock(mu_);
  for (const std::string& id : ids) {
    if (vmdir->children.count(id)) continue;
    auto n = AddChild(vmdir, id, NodeKind::kBackupDir, vmdir->vm + "/" + id);
    n->backup = std::make_shared<BackupTree>();
    n->backup->ref = BackupRef{vmdir->vm, id};
    struct timespec t {BackupIdTime(id), 0};
    DirAttr(&n->attr, t);
    n->attr.st_ino = n->ino;
  }
  if (!ids.empty()) {
    auto latest = AddChild(vmdir, "latest", NodeKind::kLatestLink, vmdir->vm + "/latest");
    latest->link_target = ids.back();
    latest->attr.st_mode = S_IFLNK | 0777;
    latest->attr.st_nlink = 1;
    latest->attr.st_size = static_cast<off_t>(ids.back().size());
    struct timespec t {BackupIdTime(ids.back()), 0};
    latest->attr.st_mtim = latest->attr.st_ctim = latest->attr.st_atim = t;
    vmdir->attr.st_mtim = vmdir->attr.st_ctim = t;
  }
  vmdir->loaded = true;
  vmdir->scanned_ms = NowMs();
  IndexPending();
  return Status::Ok();
}

Status Namespace::LoadBackup(const std::shared_ptr<Node>& dir) {
  LM_ASSIGN_OR_RETURN(BackupManifest m, repo_.LoadManifest(dir->backup->ref));
  std::unique_lock lock(mu_);
  BackupTree& tree = *dir->backup;
  tree.manifest = std::move(m);
  std::map<std::string, std::shared_ptr<Node>> by_path = {{"", dir}};
  const std::string key_base = tree.ref.vm + "/" + tree.ref.id + "/";
  for (size_t i = 0; i < tree.manifest.files.size(); i++) {
    const FileEntry& f = tree.manifest.files[i];
    auto slash = f.path.rfind('/');
    std::string parent_path = slash == std::string::npos ? "" : f.path.substr(0, slash);
    std::string name = slash == std::string::npos ? f.path : f.path.substr(slash + 1);
    auto parent = by_path.find(parent_path);
    if (parent == by_path.end()) continue;  // the manifest decoder guarantees parents first
    tree.base_paths[f.path] = static_cast<int>(i);
    NodeKind kind = f.type == FileType::kDir       ? NodeKind::kDir
                    : f.type == FileType::kSymlink ? NodeKind::kSymlink
                                                   : NodeKind::kFile;
    auto n = AddChild(parent->second, name, kind, key_base + f.path);
    n->file_index = static_cast<int>(i);
    n->rel = f.path;
    n->base_size = f.size;
    n->link_target = f.target;
    struct stat& st = n->attr;
    st.st_mode = TypeBits(kind) | (f.mode & 07777);
    st.st_nlink = kind == NodeKind::kDir ? 2 : 1;
    st.st_uid = f.uid;
    st.st_gid = f.gid;
    st.st_size = static_cast<off_t>(f.size);
    st.st_blocks = static_cast<blkcnt_t>((f.size + 511) / 512);
    st.st_blksize = static_cast<blksize_t>(tree.manifest.chunk_size);
    st.st_mtim = TimespecFromNs(f.mtime_ns);
    st.st_atim = TimespecFromNs(f.atime_ns);
    st.st_ctim = st.st_mtim;
    n->xattrs = f.xattrs;
    if (kind == NodeKind::kDir) {
      n->loaded = true;
      by_path[f.path] = n;
    }
  }
  if (view_planner_) {
    // The views read small files and image headers (through the cache, traced as those
    // files' reads, so profiles pre-stage them): with the namespace unlocked. The copy is
    // not `loaded` yet, so every other lookup in it waits on load_mu_, held by our caller.
    lock.unlock();
    std::vector<std::shared_ptr<ViewReader>> views = view_planner_(dir->backup);
    lock.lock();
    AddViews(dir, by_path, std::move(views));
  }
  if (store_) {
    dir->attr.st_mode = S_IFDIR | 0755;
    Status s = ApplyOverlay(dir);
    if (!s.ok()) {
      unindexed_.clear();
      return s;
    }
  }
  dir->loaded = true;
  IndexPending();  // after the overlay moved nodes to the numbers they had
  return Status::Ok();
}

void Namespace::AddViews(const std::shared_ptr<Node>& dir, const std::map<std::string, std::shared_ptr<Node>>& dirs,
                         std::vector<std::shared_ptr<ViewReader>> views) {
  BackupTree& tree = *dir->backup;
  const std::string key_base = tree.ref.vm + "/" + tree.ref.id + "/";
  for (auto& v : views) {
    const CopyView& view = v->view();
    auto source = tree.base_paths.find(view.source);
    auto slash = view.name.rfind('/');
    std::string parent_path = slash == std::string::npos ? "" : view.name.substr(0, slash);
    auto p = dirs.find(parent_path);
    if (p == dirs.end()) continue;
    const std::shared_ptr<Node>& parent = p->second;
    std::string name = slash == std::string::npos ? view.name : view.name.substr(slash + 1);
    if (source == tree.base_paths.end() || source->second < 0 || parent->children.count(name)) continue;
    const FileEntry& src = tree.manifest.files[source->second];
    auto n = AddChild(parent, name, NodeKind::kFile, key_base + view.name);
    n->view_index = static_cast<int>(tree.views.size());
    n->rel = view.name;
    n->base_size = view.size;
    struct stat& st = n->attr;
    st.st_mode = S_IFREG | (src.mode & 0666);
    st.st_nlink = 1;
    st.st_uid = src.uid;
    st.st_gid = src.gid;
    st.st_size = static_cast<off_t>(view.size);
    st.st_blocks = static_cast<blkcnt_t>((view.size + 511) / 512);
    st.st_blksize = static_cast<blksize_t>(tree.manifest.chunk_size);
    st.st_mtim = st.st_ctim = TimespecFromNs(src.mtime_ns);
    st.st_atim = TimespecFromNs(src.atime_ns);
    tree.base_paths[view.name] = -1;
    tree.views.push_back(std::move(v));
  }
}

Status Namespace::Load(const std::shared_ptr<Node>& dir) {
  bool stale;
  {
    std::shared_lock lock(mu_);
    bool rescans = dir->kind == NodeKind::kRoot || dir->kind == NodeKind::kVmDir;
    stale = !dir->loaded || (rescans && NowMs() - dir->scanned_ms > kRescanMs);
  }
  if (!stale) return Status::Ok();
  std::lock_guard load_lock(load_mu_);
  switch (dir->kind) {
    case NodeKind::kRoot: return ScanRoot(dir);
    case NodeKind::kVmDir: return ScanVm(dir);
    case NodeKind::kBackupDir: {
      {
        std::shared_lock lock(mu_);
        if (dir->loaded) return Status::Ok();  // another thread loaded it meanwhile
      }
      return LoadBackup(dir);
    }
    default: return Status::Ok();
  }
}

Result<std::shared_ptr<Node>> Namespace::Get(Ino ino) {
  std::shared_lock lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return Status::NotFound("inode " + std::to_string(ino));
  return it->second;
}

Result<std::shared_ptr<Node>> Namespace::Resolve(Ino ino) { return ResolveAt(ino, 0); }

Result<std::shared_ptr<Node>> Namespace::ResolveAt(Ino ino, int depth) {
  auto known = Get(ino);
  if (known.ok() || !inodes_) return known;
  auto rec = inodes_->Get(ino);
  if (!rec || depth > 4096 || rec->parent == ino) return Status::NotFound("inode " + std::to_string(ino));
  LM_ASSIGN_OR_RETURN(auto parent, ResolveAt(rec->parent, depth + 1));
  LM_ASSIGN_OR_RETURN(auto n, Lookup(parent->ino, rec->name));
  if (n->ino != ino) return Status::NotFound("inode " + std::to_string(ino) + " (replaced)");
  return n;
}

Result<std::shared_ptr<Node>> Namespace::Lookup(Ino parent, const std::string& name) {
  if (name.size() > kMaxNameLength) return Status::Of(Code::kNameTooLong, "name longer than 255 bytes");
  LM_ASSIGN_OR_RETURN(auto dir, Get(parent));
  if (!S_ISDIR(dir->attr.st_mode)) return Status::Invalid("not a directory");
  LM_RETURN_IF_ERROR(Load(dir));
  std::shared_lock lock(mu_);
  auto it = dir->children.find(name);
  if (it == dir->children.end()) return Status::NotFound(name);
  return nodes_.at(it->second);
}

Result<std::vector<std::pair<std::string, std::shared_ptr<Node>>>> Namespace::List(Ino ino) {
  LM_ASSIGN_OR_RETURN(auto dir, Get(ino));
  if (!S_ISDIR(dir->attr.st_mode)) return Status::Invalid("not a directory");
  LM_RETURN_IF_ERROR(Load(dir));
  std::shared_lock lock(mu_);
  std::vector<std::pair<std::string, std::shared_ptr<Node>>> out;
  out.reserve(dir->children.size());
  for (auto& [name, child] : dir->children) out.push_back({name, nodes_.at(child)});
  return out;
}

Result<std::shared_ptr<const FileChunks>> Namespace::Chunks(const Node& file) {
  if (file.kind != NodeKind::kFile || !file.backup || file.file_index < 0) return Status::Invalid("not a backed-up file");
  return ChunksOf(*file.backup, file.file_index);
}

Result<std::shared_ptr<const FileChunks>> Namespace::ChunksOf(BackupTree& tree, int index) {
  if (index < 0 || static_cast<size_t>(index) >= tree.manifest.files.size()) return Status::Invalid("no such backed-up file");
  {
    std::lock_guard lock(tree.mu);
    auto it = tree.chunks.find(index);
    if (it != tree.chunks.end()) return it->second;
  }
  LM_ASSIGN_OR_RETURN(FileChunks fc, repo_.LoadFileChunks(tree.ref, tree.manifest.files[index]));
  auto shared = std::make_shared<const FileChunks>(std::move(fc));
  std::lock_guard lock(tree.mu);
  return tree.chunks.emplace(index, shared).first->second;
}

struct stat Namespace::Stat(const Node& n) const {
  std::shared_lock lock(mu_);
  struct stat st = n.attr;
  if (S_ISDIR(st.st_mode) && n.loaded) {
    nlink_t links = 2;
    for (auto& [name, ino] : n.children) {
      auto child = nodes_.find(ino);
      if (child != nodes_.end() && S_ISDIR(child->second->attr.st_mode)) links++;
    }
    st.st_nlink = links;
  }
  return st;
}

size_t Namespace::size() const {
  std::shared_lock lock(mu_);
  return nodes_.size();
}

}  // namespace lm

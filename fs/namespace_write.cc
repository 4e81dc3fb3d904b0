// The writable half of the namespace: creating, removing and renaming inside backup
// directories, persisting overlay entries, and merging them at load.
#include <sys/xattr.h>

#include <cstring>
#include <ctime>
#include <functional>
#include <set>

#include "fs/namespace.h"
#include "fs/namespace_internal.h"
#include "base/log.h"

namespace lm {

using namespace ns_internal;


OverlayEntry Namespace::EntryOf(const Node& n) const {
  OverlayEntry e;
  e.type = n.kind == NodeKind::kDir       ? 'd'
           : n.kind == NodeKind::kSymlink ? 'l'
           : n.kind == NodeKind::kSpecial ? SpecialType(n.attr.st_mode)
                                          : 'f';
  e.rdev = n.kind == NodeKind::kSpecial ? n.attr.st_rdev : 0;
  e.xattrs = n.xattrs;
  e.hardlink = !n.more_links.empty();
  e.mode = n.attr.st_mode & 07777;
  e.uid = n.attr.st_uid;
  e.gid = n.attr.st_gid;
  e.atime_ns = NsFromTimespec(n.attr.st_atim);
  e.mtime_ns = NsFromTimespec(n.attr.st_mtim);
  e.ctime_ns = NsFromTimespec(n.attr.st_ctim);
  e.ino = n.ino;
  e.base_index = n.kind == NodeKind::kFile ? n.file_index : -1;
  bool view = n.kind == NodeKind::kFile && n.view_index >= 0 && n.backup;
  if (view) e.view = n.backup->views.at(n.view_index)->name();
  e.base_size = e.base_index >= 0 || view ? n.base_size : 0;
  e.fid = n.fid;
  e.target = n.kind == NodeKind::kSymlink ? n.link_target : "";
  e.opaque = n.opaque;
  return e;
}

void Namespace::Detach(const std::shared_ptr<Node>& n) {
  auto parent = nodes_.find(n->parent);
  if (parent != nodes_.end()) {
    auto it = parent->second->children.find(n->name);
    if (it != parent->second->children.end() && it->second == n->ino) parent->second->children.erase(it);
  }
  n->unlinked = true;
  n->attr.st_nlink = 0;
  for (auto& [name, ino] : std::map<std::string, Ino>(n->children)) Detach(nodes_.at(ino));
}

Result<std::shared_ptr<Node>> Namespace::WritableDir(Ino ino) {
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return Status::NotFound("inode " + std::to_string(ino));
  auto& n = it->second;
  if (!S_ISDIR(n->attr.st_mode)) return Status::Of(Code::kNotDir, n->name);
  if (!store_ || !n->backup || (n->kind != NodeKind::kBackupDir && n->kind != NodeKind::kDir)) {
    return Status::Of(Code::kReadOnly, "only backup directories are writable");
  }
  if (n->unlinked) return Status::NotFound(n->name);
  return n;
}

// Moves a node to another inode number (an overlay entry remembers the one it had).
static void MoveIno(std::unordered_map<Ino, std::shared_ptr<Node>>& nodes,
                    std::shared_ptr<Node> n, Ino ino) {  // by value: it erases n's slot
  auto parent = nodes.find(n->parent);
  if (parent != nodes.end()) {
    auto it = parent->second->children.find(n->name);
    if (it != parent->second->children.end() && it->second == n->ino) it->second = ino;
  }
  nodes.erase(n->ino);
  for (auto& [name, child] : n->children) nodes.at(child)->parent = ino;
  n->ino = ino;
  n->attr.st_ino = ino;
  nodes[ino] = n;
}

Status Namespace::ApplyOverlay(const std::shared_ptr<Node>& dir) {
  BackupTree& tree = *dir->backup;
  LM_ASSIGN_OR_RETURN(auto entries, store_->Entries(tree.ref));
  std::string data_dir = store_->DataDir(tree.ref);
  auto walk = [&](const std::string& rel) -> std::shared_ptr<Node> {
    std::shared_ptr<Node> n = dir;
    size_t pos = 0;
    while (n && pos < rel.size()) {
      size_t slash = rel.find('/', pos);
      std::string part = rel.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
      auto it = n->children.find(part);
      n = it == n->children.end() ? nullptr : nodes_.at(it->second);
      pos = slash == std::string::npos ? rel.size() : slash + 1;
    }
    return n;
  };
  std::set<std::string> fids;
  std::set<Ino> linked;  // nodes made from hard-link entries in this pass
  for (auto& [path, e] : entries) {
    auto slash = path.rfind('/');
    auto parent = walk(slash == std::string::npos ? "" : path.substr(0, slash));
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    std::shared_ptr<Node> node;
    if (parent) {
      auto it = parent->children.find(name);
      if (it != parent->children.end()) node = nodes_.at(it->second);
    }
    if (e.whiteout) {
      if (node) Detach(node);
      continue;
    }
    if (!parent || !S_ISDIR(parent->attr.st_mode)) {
      LogWarn(tree.ref.Name() + ": overlay entry " + path + " has no parent directory; ignored");
      continue;
    }
    if (e.hardlink && e.ino && linked.count(e.ino)) {  // another name of a node made above
      auto target = nodes_.at(e.ino);
      if (node != target) {
        if (node) Detach(node);  // the backed-up file this name had is hidden
        parent->children[name] = e.ino;
        target->more_links.push_back({parent->ino, name, path});
        target->attr.st_nlink = static_cast<nlink_t>(1 + target->more_links.size());
      }
      continue;
    }
    NodeKind kind = e.type == 'd'        ? NodeKind::kDir
                    : e.type == 'l'      ? NodeKind::kSymlink
                    : SpecialBits(e.type) ? NodeKind::kSpecial
                                          : NodeKind::kFile;
    if (node && (node->kind != kind || e.opaque)) {
      for (auto& [n, ino] : std::map<std::string, Ino>(node->children)) Detach(nodes_.at(ino));
    }
    if (!node) node = AddChild(parent, name, kind, tree.ref.vm + "/" + tree.ref.id + "/" + path);
    if (e.ino && e.ino != node->ino) {
      auto taken = nodes_.find(e.ino);
      if (taken != nodes_.end() && taken->second != node) {
        MoveIno(nodes_, taken->second, FreeIno(e.ino));
      }
      MoveIno(nodes_, node, e.ino);
    }
    node->kind = kind;
    node->rel = path;
    node->has_entry = true;
    node->opaque = e.opaque;
    // A state directory may be written by someone else: a base must be one this copy has.
    node->file_index = e.base_index < static_cast<int>(tree.manifest.files.size()) ? e.base_index : -1;
    node->view_index = -1;
    for (size_t v = 0; v < tree.views.size() && !e.view.empty(); v++) {
      if (tree.views[v]->name() == e.view && tree.views[v]->size() == e.base_size) node->view_index = static_cast<int>(v);
    }
    if ((e.base_index >= 0 && node->file_index < 0) || (!e.view.empty() && node->view_index < 0)) {
      LogWarn(tree.ref.Name() + ": overlay entry " + path + " names a base the copy does not have; it is kept without one");
    }
    node->base_size = HasBase(*node) ? e.base_size : 0;
    node->fid = e.fid;
    node->link_target = e.target;
    struct stat& st = node->attr;
    st.st_mode = (kind == NodeKind::kSpecial ? SpecialBits(e.type) : TypeBits(kind)) | e.mode;
    st.st_rdev = kind == NodeKind::kSpecial ? static_cast<dev_t>(e.rdev) : 0;
    node->xattrs = e.xattrs;
    st.st_uid = e.uid;
    st.st_gid = e.gid;
    st.st_atim = TimespecFromNs(e.atime_ns);
    st.st_mtim = TimespecFromNs(e.mtime_ns);
    st.st_ctim = TimespecFromNs(e.ctime_ns);
    st.st_nlink = kind == NodeKind::kDir ? 2 : 1;
    st.st_size = kind == NodeKind::kSymlink ? static_cast<off_t>(e.target.size())
                 : kind == NodeKind::kFile   ? static_cast<off_t>(node->base_size)
                                             : 0;
    if (kind == NodeKind::kDir) node->loaded = true;
    if (e.hardlink && kind != NodeKind::kDir) linked.insert(node->ino);
    if (!e.fid.empty()) {
      auto f = OverlayFile::Open(repo_.env(), data_dir, e.fid, node->base_size);
      if (!f.ok()) return f.status().Context(tree.ref.Name() + ":" + path);
      node->data = std::move(f).value();
      st.st_size = static_cast<off_t>(node->data->size());
      fids.insert(e.fid);
    }
    st.st_blocks = (st.st_size + 511) / 512;
  }
  // Data files no entry names were left by a crash between creating and recording them.
  auto names = ListDir(data_dir);
  if (names.ok()) {
    for (auto& n : *names) {
      if (!fids.count(n.substr(0, n.find('.')))) (void)::unlink(JoinPath(data_dir, n).c_str());
    }
  }
  return Status::Ok();
}

namespace {
// The copy a change happens in: its write lock is taken before anything else.
Result<std::shared_ptr<BackupTree>> CopyOf(const std::shared_ptr<Node>& dir, bool writable) {
  if (!writable || !dir->backup) return Status::Of(Code::kReadOnly, "only backup directories are writable");
  return dir->backup;
}
}  // namespace

Result<std::shared_ptr<Node>> Namespace::Create(Ino parent, const std::string& name, NodeKind kind,
                                                uint32_t mode, uint32_t uid, uint32_t gid,
                                                const std::string& target, dev_t rdev) {
  LM_RETURN_IF_ERROR(CheckName(name));
  if (kind == NodeKind::kSpecial && !SpecialType(mode)) return Status::Invalid("not a special file type");
  LM_ASSIGN_OR_RETURN(auto p, Get(parent));
  LM_RETURN_IF_ERROR(Load(p));
  LM_ASSIGN_OR_RETURN(auto copy, CopyOf(p, writable()));
  std::lock_guard write(copy->write_mu);
  std::shared_ptr<Node> dir, n;
  OverlayEntry entry;
  {
    // Numbered now, a child only once its entry is durable: lookups never see a name that
    // a power loss could take back.
    std::unique_lock lock(mu_);
    LM_ASSIGN_OR_RETURN(dir, WritableDir(parent));
    if (dir->children.count(name)) return Status::Exists(name);
    std::string rel = Child(dir->rel, name);
    n = AddChild(dir, name, kind, copy->ref.vm + "/" + copy->ref.id + "/" + rel, true, false);
    n->rel = rel;
    n->file_index = -1;
    n->opaque = kind == NodeKind::kDir;  // hides what the backup had at this path before
    n->loaded = kind == NodeKind::kDir;
    n->link_target = target;
    struct stat& st = n->attr;
    st.st_mode = (kind == NodeKind::kSpecial ? (mode & S_IFMT) : TypeBits(kind)) |
                 (kind == NodeKind::kSymlink ? 0777 : (mode & 07777));
    st.st_rdev = kind == NodeKind::kSpecial ? rdev : 0;
    st.st_uid = uid;
    st.st_gid = gid;
    st.st_atim = st.st_mtim = st.st_ctim = RealtimeNow();
    st.st_nlink = kind == NodeKind::kDir ? 2 : 1;
    st.st_size = kind == NodeKind::kSymlink ? static_cast<off_t>(target.size()) : 0;
    st.st_blksize = 4096;
    entry = EntryOf(*n);
  }
  Status s = MkdirAll(store_->DataDir(copy->ref));
  if (s.ok()) s = store_->Apply(copy->ref, {{n->rel, entry}}, true);
  if (s.ok()) copy->changes++;
  std::unique_lock lock(mu_);
  if (!s.ok()) {
    nodes_.erase(n->ino);
    return s;
  }
  Attach(dir, n);
  n->has_entry = true;
  dir->attr.st_mtim = dir->attr.st_ctim = n->attr.st_mtim;
  IndexPending();
  return n;
}

Status Namespace::Remove(Ino parent, const std::string& name, bool want_dir) {
  LM_ASSIGN_OR_RETURN(auto p, Get(parent));
  LM_RETURN_IF_ERROR(Load(p));
  LM_ASSIGN_OR_RETURN(auto copy, CopyOf(p, writable()));
  std::lock_guard write(copy->write_mu);
  std::shared_ptr<Node> dir, n;
  Changes changes;
  bool one_of_several = false;
  {
    std::shared_lock lock(mu_);
    LM_ASSIGN_OR_RETURN(dir, WritableDir(parent));
    auto it = dir->children.find(name);
    if (it == dir->children.end()) return Status::NotFound(name);
    n = nodes_.at(it->second);
    bool is_dir = S_ISDIR(n->attr.st_mode);
    if (want_dir && !is_dir) return Status::Of(Code::kNotDir, name);
    if (!want_dir && is_dir) return Status::Of(Code::kIsDir, name);
    if (is_dir && !n->children.empty()) return Status::Of(Code::kNotEmpty, name);
    one_of_several = !n->more_links.empty();
    if (one_of_several) {  // one name of several goes; the node stays
      UnlinkChanges(*n, dir->ino, name, copy->base_paths.count(*RelSlot(*n, dir->ino, name)) > 0, &changes);
    } else {
      if (n->has_entry) changes.push_back({n->rel, std::nullopt});
      if (copy->base_paths.count(n->rel)) changes.push_back({n->rel, Whiteout()});
    }
  }
  LM_RETURN_IF_ERROR(MkdirAll(store_->DataDir(copy->ref)));
  LM_RETURN_IF_ERROR(store_->Apply(copy->ref, changes, true));
  copy->changes++;
  std::shared_ptr<OverlayFile> to_remove;
  {
    std::unique_lock lock(mu_);
    if (one_of_several) {
      ForgetLink(n, dir->ino, name);
      IndexPending();
    } else {
      Detach(n);
      if (n->data && n->open_count == 0) to_remove = std::move(n->data);
    }
    dir->attr.st_mtim = dir->attr.st_ctim = RealtimeNow();
  }
  if (to_remove) LM_RETURN_IF_ERROR(to_remove->Remove());
  return Status::Ok();
}

Status Namespace::Rename(Ino parent, const std::string& name, Ino new_parent,
                         const std::string& new_name, unsigned flags) {
  constexpr unsigned kNoReplace = 1;  // RENAME_NOREPLACE
  if (flags & ~kNoReplace) return Status::Invalid("rename flags not supported");
  LM_RETURN_IF_ERROR(CheckName(new_name));
  LM_ASSIGN_OR_RETURN(auto p1, Get(parent));
  LM_RETURN_IF_ERROR(Load(p1));
  LM_ASSIGN_OR_RETURN(auto p2, Get(new_parent));
  LM_RETURN_IF_ERROR(Load(p2));
  LM_ASSIGN_OR_RETURN(auto copy, CopyOf(p1, writable()));
  LM_ASSIGN_OR_RETURN(auto to_copy, CopyOf(p2, writable()));
  if (to_copy != copy) return Status::Of(Code::kCrossDevice, "rename across backups");
  std::lock_guard write(copy->write_mu);
  std::shared_ptr<OverlayFile> to_remove;
  // The checks and the batch of entries under the shared lock; the synced write with none;
  // then memory follows, under the exclusive lock. Only this copy's changes could change
  // what was checked, and they wait for write_mu.
  std::shared_lock check_lock(mu_);
  {
    LM_ASSIGN_OR_RETURN(auto sd, WritableDir(parent));
    LM_ASSIGN_OR_RETURN(auto dd, WritableDir(new_parent));
    if (sd->backup != dd->backup) return Status::Of(Code::kCrossDevice, "rename across backups");
    auto sit = sd->children.find(name);
    if (sit == sd->children.end()) return Status::NotFound(name);
    auto src = nodes_.at(sit->second);
    bool src_dir = S_ISDIR(src->attr.st_mode);
    std::shared_ptr<Node> dst;
    auto dit = dd->children.find(new_name);
    if (dit != dd->children.end()) {
      dst = nodes_.at(dit->second);
      if (flags & kNoReplace) return Status::Exists(new_name);
      if (dst == src) return Status::Ok();
      bool dst_dir = S_ISDIR(dst->attr.st_mode);
      if (src_dir && !dst_dir) return Status::Of(Code::kNotDir, new_name);
      if (!src_dir && dst_dir) return Status::Of(Code::kIsDir, new_name);
      if (dst_dir && !dst->children.empty()) return Status::Of(Code::kNotEmpty, new_name);
    }
    for (auto up = dd; up; up = up->kind == NodeKind::kBackupDir ? nullptr : nodes_.at(up->parent)) {
      if (up == src) return Status::Invalid("cannot move a directory into itself");
    }
    BackupTree& tree = *sd->backup;
    Changes changes;
    bool dst_linked = dst && !dst->more_links.empty();
    if (dst_linked) UnlinkChanges(*dst, dd->ino, new_name, false, &changes);  // its other names stay
    else if (dst && dst->has_entry) changes.push_back({dst->rel, std::nullopt});
    // Every node of the moved subtree gets an entry at its new path (pure: nothing changes
    // in memory until the store has the batch). A hard-linked file moves by the one name
    // that is in the subtree; its other names keep their entries.
    struct Moved {
      std::shared_ptr<Node> n;
      std::string* slot;  // the moved name's rel: n->rel or one of n->more_links
      std::string rel;    // its new value
    };
    std::vector<Moved> moved;
    std::function<void(const std::shared_ptr<Node>&, std::string*, const std::string&)> collect =
        [&](const std::shared_ptr<Node>& n, std::string* slot, const std::string& rel) {
          moved.push_back({n, slot, rel});
          for (auto& [cname, ino] : n->children) {
            auto child = nodes_.at(ino);
            collect(child, RelSlot(*child, n->ino, cname), Child(rel, cname));
          }
        };
    std::string new_rel = Child(dd->rel, new_name);
    std::string* src_slot = RelSlot(*src, sd->ino, name);
    std::string old_rel = *src_slot;
    collect(src, src_slot, new_rel);
    for (auto& m : moved) {
      if (m.n->has_entry) changes.push_back({*m.slot, std::nullopt});
    }
    for (auto& m : moved) {
      OverlayEntry e = EntryOf(*m.n);
      if (m.n == src && src_dir) e.opaque = true;
      changes.push_back({m.rel, e});
    }
    if (tree.base_paths.count(old_rel)) changes.push_back({old_rel, Whiteout()});
    check_lock.unlock();
    LM_RETURN_IF_ERROR(MkdirAll(store_->DataDir(tree.ref)));
    LM_RETURN_IF_ERROR(store_->Apply(tree.ref, changes, true));
    tree.changes++;
    std::unique_lock lock(mu_);
    if (dst_linked) {
      ForgetLink(dst, dd->ino, new_name);
    } else if (dst) {
      Detach(dst);
      if (dst->data && dst->open_count == 0) to_remove = std::move(dst->data);
    }
    sd->children.erase(name);
    dd->children[new_name] = src->ino;
    if (src->parent == sd->ino && src->name == name) {
      src->parent = dd->ino;
      src->name = new_name;
    } else {
      for (NodeLink& l : src->more_links) {
        if (l.parent == sd->ino && l.name == name) {
          l.parent = dd->ino;
          l.name = new_name;
          break;
        }
      }
    }
    if (src_dir) src->opaque = true;
    for (auto& m : moved) {
      *m.slot = m.rel;
      m.n->has_entry = true;
    }
    unindexed_.push_back({src, false});
    IndexPending();
    struct timespec now = RealtimeNow();
    src->attr.st_ctim = now;
    sd->attr.st_mtim = sd->attr.st_ctim = dd->attr.st_mtim = dd->attr.st_ctim = now;
  }
  if (to_remove) LM_RETURN_IF_ERROR(to_remove->Remove());
  return Status::Ok();
}

Status Namespace::Persist(Node& n, bool sync) {
  if (!store_ || !n.backup) return Status::Ok();
  std::lock_guard write(n.backup->write_mu);
  return PersistLocked(n, sync);
}

Status Namespace::PersistLocked(Node& n, bool sync) {
  BackupRef ref;
  Changes changes;  // one entry per name (hard links share the content)
  {
    // Clean from here: a change made while the entry is written marks it dirty again.
    std::unique_lock lock(mu_);
    if (!store_ || !n.backup || n.unlinked || n.kind == NodeKind::kBackupDir) return Status::Ok();
    OverlayEntry e = EntryOf(n);
    ref = n.backup->ref;
    changes.push_back({n.rel, e});
    for (auto& l : n.more_links) changes.push_back({l.rel, e});
    n.meta_dirty = false;
  }
  Status s = MkdirAll(store_->DataDir(ref));
  if (s.ok()) s = store_->Apply(ref, changes, sync);
  std::unique_lock lock(mu_);
  if (!s.ok()) {
    n.meta_dirty = true;
    return s;
  }
  n.has_entry = true;
  return Status::Ok();
}

Result<std::shared_ptr<OverlayFile>> Namespace::EnsureData(Node& n) {
  if (!store_ || !n.backup || n.kind != NodeKind::kFile) {
    return Status::Of(Code::kReadOnly, "not a writable file");
  }
  std::lock_guard write(n.backup->write_mu);  // one creator of the node's data
  std::string dir;
  uint64_t base_size;
  {
    std::shared_lock lock(mu_);
    if (n.data) return n.data;
    dir = store_->DataDir(n.backup->ref);
    base_size = HasBase(n) ? n.base_size : 0;
  }
  std::string fid = RandomHex(8);
  LM_ASSIGN_OR_RETURN(auto f, OverlayFile::Open(repo_.env(), dir, fid, base_size));
  std::shared_ptr<OverlayFile> shared = std::move(f);
  {
    std::unique_lock lock(mu_);
    n.data = shared;
    n.fid = fid;
  }
  Status s = PersistLocked(n, true);  // the entry names the data before any byte is written
  if (!s.ok()) {
    std::unique_lock lock(mu_);
    n.data.reset();
    n.fid.clear();
    (void)shared->Remove();
    return s;
  }
  return shared;
}

void Namespace::Released(Node& n) {
  std::shared_ptr<OverlayFile> to_remove;
  {
    std::unique_lock lock(mu_);
    if (n.unlinked && n.open_count == 0 && n.data) to_remove = std::move(n.data);
  }
  if (to_remove) (void)to_remove->Remove();
}

Result<std::vector<std::pair<Ino, std::string>>> Namespace::Discard(const BackupRef& b) {
  if (!store_) return Status::Of(Code::kReadOnly, "this mount has no overlays");
  LM_ASSIGN_OR_RETURN(auto vm, Lookup(kRootIno, b.vm));
  LM_ASSIGN_OR_RETURN(auto dir, Lookup(vm->ino, b.id));
  if (!dir->backup) return Status::NotFound(b.Name());
  std::lock_guard write(dir->backup->write_mu);
  std::unique_lock lock(mu_);
  int open = dir->backup->open_files.load();
  if (open > 0) {
    return Status::Busy(b.Name() + " has " + std::to_string(open) + " open file" +
                        (open == 1 ? "" : "s") + "; stop the VM before discarding its overlay");
  }
  LM_RETURN_IF_ERROR(store_->Discard(b));
  std::vector<std::pair<Ino, std::string>> gone;
  std::function<void(const std::shared_ptr<Node>&)> erase = [&](const std::shared_ptr<Node>& n) {
    for (auto& [name, ino] : n->children) erase(nodes_.at(ino));
    nodes_.erase(n->ino);
  };
  for (auto& [name, ino] : dir->children) {
    gone.push_back({dir->ino, name});
    erase(nodes_.at(ino));
  }
  dir->children.clear();
  dir->loaded = false;
  auto fresh = std::make_shared<BackupTree>();
  fresh->ref = b;
  fresh->changes = dir->backup->changes.load() + 1;  // a discard is a change (backup --from-mount)
  dir->backup = fresh;
  return gone;
}

}  // namespace lm

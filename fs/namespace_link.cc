// Hard links in the overlay: one node, several names. Every name has an overlay entry with
// the same content, marked as a link; ApplyOverlay (namespace_write.cc) joins entries
// with the same inode number into one node again after a restart.
#include "fs/namespace.h"
#include "fs/namespace_internal.h"

namespace lm {

using namespace ns_internal;

std::string* Namespace::RelSlot(Node& n, Ino parent, const std::string& name) {
  if (n.parent == parent && n.name == name) return &n.rel;
  for (NodeLink& l : n.more_links)
    if (l.parent == parent && l.name == name) return &l.rel;
  return &n.rel;  // not reached: every caller names an existing name of n
}

void Namespace::UnlinkChanges(Node& n, Ino parent, const std::string& name, bool base_path, Changes* changes) {
  std::string rel = *RelSlot(n, parent, name);
  changes->push_back({rel, std::nullopt});
  if (base_path) changes->push_back({rel, Whiteout()});
  // The other names keep one entry each, now with the new ctime (and no link mark if
  // only one name is left).
  OverlayEntry e = EntryOf(n);
  e.ctime_ns = NsFromTimespec(RealtimeNow());
  e.hardlink = n.more_links.size() > 1;
  std::vector<std::string> rels = {n.rel};
  for (auto& l : n.more_links) rels.push_back(l.rel);
  for (auto& r : rels)
    if (r != rel) changes->push_back({r, e});
}

void Namespace::ForgetLink(const std::shared_ptr<Node>& n, Ino parent, const std::string& name) {
  auto dir = nodes_.find(parent);
  if (dir != nodes_.end()) dir->second->children.erase(name);
  if (n->parent == parent && n->name == name) {
    NodeLink next = n->more_links.front();  // the next name becomes the first
    n->more_links.erase(n->more_links.begin());
    n->parent = next.parent;
    n->name = next.name;
    n->rel = next.rel;
    unindexed_.push_back({n, false});  // NFS handles resolve through the new first name
  } else {
    for (auto it = n->more_links.begin(); it != n->more_links.end(); ++it) {
      if (it->parent == parent && it->name == name) {
        n->more_links.erase(it);
        break;
      }
    }
  }
  n->attr.st_nlink = static_cast<nlink_t>(1 + n->more_links.size());
  n->attr.st_ctim = RealtimeNow();
}

Result<std::shared_ptr<Node>> Namespace::Link(Ino ino, Ino new_parent, const std::string& new_name) {
  LM_RETURN_IF_ERROR(CheckName(new_name));
  LM_ASSIGN_OR_RETURN(auto p, Get(new_parent));
  LM_RETURN_IF_ERROR(Load(p));
  if (!writable() || !p->backup) return Status::Of(Code::kReadOnly, "only backup directories are writable");
  std::lock_guard write(p->backup->write_mu);
  std::shared_lock check_lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return Status::NotFound("inode " + std::to_string(ino));
  auto n = it->second;
  if (n->kind != NodeKind::kFile && n->kind != NodeKind::kSymlink && n->kind != NodeKind::kSpecial) {
    return Status::Of(Code::kReadOnly, "only files inside backup directories can have more names");
  }
  if (n->unlinked) return Status::NotFound(n->name);
  LM_ASSIGN_OR_RETURN(auto dd, WritableDir(new_parent));
  if (dd->backup != n->backup) return Status::Of(Code::kCrossDevice, "link across backups");
  if (dd->children.count(new_name)) return Status::Exists(new_name);
  BackupTree& tree = *dd->backup;
  std::string new_rel = Child(dd->rel, new_name);
  struct timespec now = RealtimeNow();
  OverlayEntry e = EntryOf(*n);
  e.hardlink = true;
  e.ctime_ns = NsFromTimespec(now);
  Changes changes = {{n->rel, e}, {new_rel, e}};
  for (auto& l : n->more_links) changes.push_back({l.rel, e});
  check_lock.unlock();  // the synced write holds only this copy's write lock
  LM_RETURN_IF_ERROR(MkdirAll(store_->DataDir(tree.ref)));
  LM_RETURN_IF_ERROR(store_->Apply(tree.ref, changes, true));
  tree.changes++;
  std::unique_lock lock(mu_);
  dd->children[new_name] = n->ino;
  n->more_links.push_back({dd->ino, new_name, new_rel});
  n->attr.st_nlink = static_cast<nlink_t>(1 + n->more_links.size());
  n->attr.st_ctim = now;
  n->has_entry = true;
  dd->attr.st_mtim = dd->attr.st_ctim = now;
  return n;
}

}  // namespace lm

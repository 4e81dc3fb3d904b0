// Extended attributes of overlay entries (user.*, trusted.*, security.*): kept in the
// entry of the node, so they survive restarts and follow renames and hard links.
#include <sys/xattr.h>

#include "fs/namespace.h"
#include "fs/namespace_internal.h"

namespace lm {

using namespace ns_internal;

namespace {
// user.livemount.*: what the mount says about its own files; nobody sets or removes them.
bool MountOwned(const std::string& name) { return name.rfind("user.livemount.", 0) == 0; }
}  // namespace

Status Namespace::SetXattr(Ino ino, const std::string& name, const std::string& value, int flags) {
  if (name.size() > kMaxXattrName) return Status::Of(Code::kRange, "attribute name too long");
  if (value.size() > kMaxXattrValue) return Status::Of(Code::kTooBig, "attribute value too large");
  if (!XattrNamespaceSupported(name) || MountOwned(name)) return Status::Unsupported("attribute namespace of " + name);
  LM_ASSIGN_OR_RETURN(auto n, Get(ino));
  {
    std::unique_lock lock(mu_);
    if (!store_ || !n->backup || n->kind == NodeKind::kBackupDir || n->unlinked) {
      return Status::Of(Code::kReadOnly, "only entries inside backup directories have writable attributes");
    }
    bool exists = n->xattrs.count(name) > 0;
    if ((flags & XATTR_CREATE) && exists) return Status::Exists(name);
    if ((flags & XATTR_REPLACE) && !exists) return Status::Of(Code::kNoAttribute, name);
    n->xattrs[name] = value;
    n->attr.st_ctim = RealtimeNow();
  }
  n->backup->changes++;
  return Persist(*n, true);
}

Result<std::string> Namespace::GetXattr(Ino ino, const std::string& name) {
  LM_ASSIGN_OR_RETURN(auto n, Get(ino));
  std::shared_lock lock(mu_);
  if (name == kViewXattr) {  // made by the mount, never taken from a backup or an overlay
    if (n->view_index < 0 || !n->backup) return Status::Of(Code::kNoAttribute, name);
    return n->backup->views.at(n->view_index)->view().source;
  }
  auto it = n->xattrs.find(name);
  if (it == n->xattrs.end()) return Status::Of(Code::kNoAttribute, name);
  return it->second;
}

Result<std::vector<std::string>> Namespace::ListXattr(Ino ino) {
  LM_ASSIGN_OR_RETURN(auto n, Get(ino));
  std::shared_lock lock(mu_);
  std::vector<std::string> names;
  for (auto& [name, value] : n->xattrs) {
    if (name != kViewXattr) names.push_back(name);
  }
  if (n->view_index >= 0) names.push_back(kViewXattr);
  return names;
}

Status Namespace::RemoveXattr(Ino ino, const std::string& name) {
  if (!XattrNamespaceSupported(name) || MountOwned(name)) return Status::Unsupported("attribute namespace of " + name);
  LM_ASSIGN_OR_RETURN(auto n, Get(ino));
  {
    std::unique_lock lock(mu_);
    if (!store_ || !n->backup || n->kind == NodeKind::kBackupDir || n->unlinked) {
      return Status::Of(Code::kReadOnly, "only entries inside backup directories have writable attributes");
    }
    if (!n->xattrs.erase(name)) return Status::Of(Code::kNoAttribute, name);
    n->attr.st_ctim = RealtimeNow();
  }
  n->backup->changes++;
  return Persist(*n, true);
}

}  // namespace lm

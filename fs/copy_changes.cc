// LiveFs::Changes: a backup copy's regular files as the mount shows them, and which of
// their bytes the overlay holds; what `backup --from-mount` needs to reuse the chunks of
// the copy it was mounted from without reading them again.
#include "fs/live_fs.h"

namespace lm {

Result<CopyChanges> LiveFs::Changes(const BackupRef& b, bool sync) {
  LM_ASSIGN_OR_RETURN(auto vm, ns_.Lookup(kRootIno, b.vm));
  LM_ASSIGN_OR_RETURN(auto dir, ns_.Lookup(vm->ino, b.id));
  if (dir->kind != NodeKind::kBackupDir) return Status::NotFound(b.Name() + ": not a backup copy");
  std::vector<std::shared_ptr<Node>> files;
  std::vector<std::shared_ptr<Node>> pending = {dir};
  while (!pending.empty()) {
    auto d = pending.back();
    pending.pop_back();
    LM_ASSIGN_OR_RETURN(auto children, ns_.List(d->ino));
    for (auto& [name, child] : children) {
      if (child->kind == NodeKind::kDir) pending.push_back(child);
      else if (child->kind == NodeKind::kFile) files.push_back(child);
    }
  }
  if (sync) {
    for (auto& f : files) {
      if (ns_.DataOf(*f)) LM_RETURN_IF_ERROR(Fsync(*f).Context(b.Name() + ":" + f->rel));
    }
  }
  CopyChanges out;
  out.generation = dir->backup->changes.load();
  for (auto& f : files) {
    Namespace::FileNames names = ns_.NamesOf(*f);
    if (names.rels.front().empty()) continue;  // unlinked meanwhile
    if (names.view && !names.data) continue;  // a view nobody wrote to: made, not kept
    FileChange c;
    c.base_index = names.file_index;
    c.base_size = names.base_size;
    if (names.data) {
      c.size = names.data->size();
      c.base_limit = c.base_index >= 0 ? names.data->base_limit() : 0;
      c.written = names.data->PresentRanges();
    } else {
      c.size = names.size;
      c.base_limit = c.base_size;
    }
    for (const std::string& rel : names.rels) {  // every name of a hard-linked file
      c.path = rel;
      out.files.push_back(c);
    }
  }
  return out;
}

}  // namespace lm

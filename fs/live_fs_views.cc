// LiveFs::PlanViews: the cross-hypervisor views of a copy (guest/copy_views.h) as the mount
// reads them. Planning reads small files and image headers through the cache; a view's
// reads later go through the backed-up file's own path, traced as that file's reads.
#include <unordered_map>

#include "base/log.h"
#include "fs/live_fs.h"

namespace lm {

std::vector<std::shared_ptr<ViewReader>> LiveFs::PlanViews(const std::shared_ptr<BackupTree>& tree,
                                                           const BackupManifest& m) {
  const BackupRef ref = tree->ref;
  std::unordered_map<std::string, const FileEntry*> by_path;
  for (const FileEntry& f : m.files) by_path[f.path] = &f;
  CopyFileReader read = [&](const std::string& path, uint64_t off, size_t len) -> Result<std::string> {
    auto it = by_path.find(path);
    if (it == by_path.end()) return Status::NotFound(ref.Name() + ":" + path);
    const FileEntry& f = *it->second;
    if (off >= f.size) return std::string();
    len = static_cast<size_t>(std::min<uint64_t>(len, f.size - off));
    LM_ASSIGN_OR_RETURN(FileChunks fc, repo_.LoadFileChunks(ref, f));
    std::string out(len, '\0');
    LM_RETURN_IF_ERROR(source_.Read(fc, ref.Name() + ":" + path, off, len, out.data()));
    return out;
  };
  CopyViewOptions options;
  if (!options_.mountpoint.empty()) options.copy_dir = options_.mountpoint + "/" + ref.vm + "/" + ref.id;
  options.domain_type = options_.domain_type;
  std::vector<std::string> notes;
  std::vector<CopyView> views = PlanCopyViews(m.files, read, options, &notes);
  for (const std::string& n : notes) LogInfo(ref.Name() + ": " + n);

  // At read time the copy is loaded: its files are found through the tree (held weakly: the
  // tree owns its views).
  std::weak_ptr<BackupTree> weak = tree;
  CopyFileOpener open = [this, weak](const std::string& path) -> Result<CopyFile> {
    auto t = weak.lock();
    if (!t) return Status::NotFound(path + ": the backup copy is gone");
    auto it = t->base_paths.find(path);
    if (it == t->base_paths.end() || it->second < 0) return Status::NotFound(t->ref.Name() + ":" + path);
    int index = it->second;
    LM_ASSIGN_OR_RETURN(auto chunks, ns_.ChunksOf(*t, index));
    std::string what = t->ref.Name() + ":" + path;
    RangeReader r = [this, weak, index, chunks, what](uint64_t off, size_t len, char* out) -> Status {
      if (auto t = weak.lock()) RecordTouchAt(t, index, off, len);
      return source_.Read(*chunks, what, off, len, out);
    };
    return CopyFile{std::move(r), chunks->file_size};
  };
  std::vector<std::shared_ptr<ViewReader>> out;
  for (CopyView& v : views) {
    std::string what = ref.Name() + ":" + v.name;
    out.push_back(std::make_shared<ViewReader>(std::move(v), std::move(what), open));
  }
  return out;
}

}  // namespace lm

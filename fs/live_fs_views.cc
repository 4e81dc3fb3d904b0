// LiveFs::PlanViews: the cross-hypervisor views of a copy (guest/copy_views.h) as the mount
// reads them. Planning and every later read of a view go through the backed-up files' own
// path (cache, repository) and are traced as those files' reads, so a learned profile
// pre-stages what the mount reads to show the views, and what a guest reads through them.
#include "base/log.h"
#include "fs/live_fs.h"

namespace lm {

std::vector<std::shared_ptr<ViewReader>> LiveFs::PlanViews(const std::shared_ptr<BackupTree>& tree) {
  const BackupRef ref = tree->ref;
  // The tree owns its views: they hold it weakly.
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
  CopyFileReader read = [&open](const std::string& path, uint64_t off, size_t len) -> Result<std::string> {
    LM_ASSIGN_OR_RETURN(CopyFile f, open(path));
    if (off >= f.size) return std::string();
    std::string out(static_cast<size_t>(std::min<uint64_t>(len, f.size - off)), '\0');
    LM_RETURN_IF_ERROR(f.read(off, out.size(), out.data()));
    return out;
  };
  CopyViewOptions options;
  if (!options_.mountpoint.empty()) options.copy_dir = options_.mountpoint + "/" + ref.vm + "/" + ref.id;
  options.domain_type = options_.domain_type;
  std::vector<std::string> notes;
  std::vector<CopyView> views = PlanCopyViews(tree->manifest.files, read, options, &notes);
  for (const std::string& n : notes) LogInfo(ref.Name() + ": " + n);
  std::vector<std::shared_ptr<ViewReader>> out;
  for (CopyView& v : views) {
    std::string what = ref.Name() + ":" + v.name;
    out.push_back(std::make_shared<ViewReader>(std::move(v), std::move(what), open));
  }
  return out;
}

}  // namespace lm

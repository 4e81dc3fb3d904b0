// `backup --from-mount MOUNTPOINT VM@BACKUP --vm NAME`: a live copy (the backup it was
// mounted from, plus what the running VM wrote into its overlay) becomes a new backup copy.
// The media agent syncs the copy's overlay (the consistent point, as an fsync) and says, file
// by file, which byte ranges the overlay holds; every chunk no write touched keeps its digest
// from the copy it was mounted from and is never read again. Only the other chunks are read,
// through the mount. If the copy changes while it is read, nothing is committed.
#include <sys/stat.h>
#include <sys/xattr.h>

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>

#include "tools/cli/from_mount.h"

#include "agent/control_client.h"
#include "fs/namespace.h"
#include "tools/cli/commands.h"

namespace lm::cli {

namespace {

struct KnownFile {
  control::ChangesReply::File change;
  std::shared_ptr<const std::vector<Digest>> base;  // the base file's chunk digests
};

// Whether [start, end) meets any of the sorted, disjoint ranges.
bool Overlaps(const std::vector<std::pair<uint64_t, uint64_t>>& ranges, uint64_t start, uint64_t end) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), std::make_pair(start, UINT64_MAX));
  if (it != ranges.begin() && std::prev(it)->second > start) return true;
  return it != ranges.end() && it->first < end;
}

// Sorted and merged, whatever order the reply had: Overlaps relies on it.
void Normalize(std::vector<std::pair<uint64_t, uint64_t>>* ranges) {
  std::sort(ranges->begin(), ranges->end());
  std::vector<std::pair<uint64_t, uint64_t>> merged;
  for (auto& r : *ranges) {
    if (!merged.empty() && r.first <= merged.back().second) merged.back().second = std::max(merged.back().second, r.second);
    else merged.push_back(r);
  }
  ranges->swap(merged);
}

}  // namespace

Result<std::optional<Digest>> UnchangedChunk(const control::ChangesReply::File& f, const std::vector<Digest>& base,
                                             uint64_t chunk_size, uint64_t i) {
  if (f.base < 0) return std::optional<Digest>();
  uint64_t start = i * chunk_size;
  uint64_t end = std::min(start + chunk_size, f.size);
  uint64_t base_end = std::min(start + chunk_size, f.base_size);
  if (start >= end || end > f.base_limit || end != base_end || i >= base.size()) return std::optional<Digest>();
  if (Overlaps(f.written, start, end)) return std::optional<Digest>();
  return std::optional<Digest>(base[i]);
}

bool IsViewOnMount(const std::string& path) { return ::lgetxattr(path.c_str(), kViewXattr, nullptr, 0) >= 0; }

Result<std::vector<MountFile>> ListCopyOnMount(const std::string& copy_dir, size_t max_files, int max_depth) {
  std::vector<MountFile> out;
  std::vector<std::pair<std::string, int>> pending = {{"", 0}};  // (directory, depth)
  while (!pending.empty()) {
    auto [rel, depth] = pending.back();
    pending.pop_back();
    LM_ASSIGN_OR_RETURN(auto names, ListDir(rel.empty() ? copy_dir : JoinPath(copy_dir, rel)));
    for (const std::string& n : names) {
      std::string r = rel.empty() ? n : rel + "/" + n;
      std::string full = JoinPath(copy_dir, r);
      struct stat st;
      if (::lstat(full.c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        if (depth < max_depth) pending.push_back({r, depth + 1});
      } else if (S_ISREG(st.st_mode)) {
        if (out.size() >= max_files) {
          return Status::Invalid(fmt::format("{}: more than {} files", copy_dir, max_files));
        }
        out.push_back({r, static_cast<uint64_t>(st.st_size), IsViewOnMount(full)});
      }
    }
  }
  return out;
}

Status PrepareBackupFromMount(Repository& repo, const std::string& mountpoint, const std::string& spec,
                              BackupOptions* o, FromMountCounts* counts) {
  auto agent = ControlClient::ForMount(mountpoint);
  if (!agent.ok()) return agent.status();
  LM_ASSIGN_OR_RETURN(control::MountStats stats, agent->Stats());
  if (AbsoluteLocation(repo.path()) != AbsoluteLocation(stats.repository)) {
    return Status::Invalid(mountpoint + " serves " + stats.repository + ", not " + repo.path());
  }
  LM_ASSIGN_OR_RETURN(control::ChangesReply changes, agent->Changes({spec, true}));
  LM_ASSIGN_OR_RETURN(BackupRef ref, repo.ResolveSpec(changes.backup));
  LM_ASSIGN_OR_RETURN(BackupManifest manifest, repo.LoadManifest(ref));
  // What each path holds now, with the chunk digests of the base file behind it.
  auto files = std::make_shared<std::map<std::string, KnownFile>>();
  std::map<int64_t, std::shared_ptr<const std::vector<Digest>>> bases;
  for (auto& f : changes.files) {
    KnownFile k{f, nullptr};
    Normalize(&k.change.written);
    if (f.base >= 0) {
      if (static_cast<uint64_t>(f.base) >= manifest.files.size()) {
        return Status::Corrupt(mountpoint + ": the media agent named file " + std::to_string(f.base) + " of " +
                               ref.Name() + ", which has " + std::to_string(manifest.files.size()));
      }
      auto& b = bases[f.base];
      if (!b) {
        LM_ASSIGN_OR_RETURN(FileChunks fc, repo.LoadFileChunks(ref, manifest.files[f.base]));
        if (fc.chunk_size != repo.chunk_size()) return Status::Corrupt(ref.Name() + ": chunk size differs from the repository's");
        b = std::make_shared<const std::vector<Digest>>(std::move(fc.digests));
      }
      k.base = b;
    }
    (*files)[f.path] = std::move(k);
  }
  o->vmdir = JoinPath(JoinPath(mountpoint, ref.vm), ref.id);
  // The copy's views are made by the mount, not kept: left out, unless the guest wrote
  // through one (then Changes lists it, and its bytes are the guest's).
  LM_ASSIGN_OR_RETURN(std::vector<MountFile> on_mount, ListCopyOnMount(o->vmdir));
  for (const MountFile& m : on_mount) {
    if (m.view && !files->count(m.path)) o->skip_paths.insert(m.path);
  }
  uint64_t cs = repo.chunk_size();
  o->known_chunk = [files, cs, counts](const std::string& path, uint64_t i) -> std::optional<Digest> {
    auto it = files->find(path);
    std::optional<Digest> d;
    if (it != files->end() && it->second.base) {
      auto u = UnchangedChunk(it->second.change, *it->second.base, cs, i);
      if (u.ok()) d = *u;
    }
    (d ? counts->reused : counts->read)++;
    return d;
  };
  // Committed only if the copy did not change while it was read: one point in time.
  uint64_t generation = changes.generation;
  std::string name = ref.Name();
  o->before_commit = [mountpoint, name, generation]() -> Status {
    auto agent = ControlClient::ForMount(mountpoint);
    if (!agent.ok()) return agent.status();
    LM_ASSIGN_OR_RETURN(control::ChangesReply now, agent->Changes({name, false}));
    if (now.generation != generation) {
      return Status::Busy(name + " changed while it was being backed up (" +
                          std::to_string(now.generation - generation) +
                          " changes); nothing was committed: pause or stop the VM and run again");
    }
    return Status::Ok();
  };
  counts->from = name;
  return Status::Ok();
}

}  // namespace lm::cli

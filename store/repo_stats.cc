#include "store/repo_stats.h"

#include <map>
#include <unordered_map>
#include <unordered_set>

namespace lm {

Result<RepoStats> CollectRepoStats(Repository& repo, const std::string& only_vm) {
  LM_RETURN_IF_ERROR(repo.Refresh());
  RepoStats s;
  // Which copies use each chunk: a count, and the first user (to tell unique from shared).
  struct Use {
    uint32_t copies = 0;
    size_t first = 0;
  };
  std::unordered_map<Digest, Use, DigestHash> uses;
  std::vector<std::unordered_set<Digest, DigestHash>> per_copy;
  LM_ASSIGN_OR_RETURN(auto vms, repo.ListVms());
  for (const std::string& vm : vms) {
    LM_ASSIGN_OR_RETURN(auto ids, repo.ListBackupIds(vm));
    for (const std::string& id : ids) {
      BackupRef b{vm, id};
      LM_ASSIGN_OR_RETURN(BackupManifest m, repo.LoadManifest(b));
      CopyStats c{vm, id, 0, m.logical_bytes, 0, 0, 0};
      std::unordered_set<Digest, DigestHash> mine;
      for (const FileEntry& f : m.files) {
        if (f.type != FileType::kFile) continue;
        c.files++;
        LM_ASSIGN_OR_RETURN(FileChunks fc, repo.LoadFileChunks(b, f));
        for (const Digest& d : fc.digests)
          if (!d.IsZero()) mine.insert(d);
      }
      size_t no = s.copies.size();
      for (const Digest& d : mine) {
        Use& u = uses[d];
        if (u.copies++ == 0) u.first = no;
      }
      c.chunks = mine.size();
      s.logical_bytes += c.logical_bytes;
      s.copies.push_back(std::move(c));
      per_copy.push_back(std::move(mine));
    }
  }
  // Sizes from the index; packs from the backend.
  std::map<PackId, uint64_t> used_in_pack;
  for (auto& [pack, e] : repo.index().AllEntries()) {
    uint64_t stored = kRecordHeaderSize + e.stored_len;
    auto u = uses.find(e.digest);
    if (u == uses.end()) {
      s.unreferenced_chunks++;
      s.unreferenced_bytes += stored;
      continue;
    }
    s.chunks++;
    s.raw_bytes += e.raw_len;
    s.stored_bytes += stored;
    used_in_pack[pack] += stored;
    if (u->second.copies == 1) s.copies[u->second.first].unique_stored += stored;
  }
  for (size_t i = 0; i < s.copies.size(); i++) {
    uint64_t all = 0;
    for (const Digest& d : per_copy[i]) {
      ChunkLocation loc;
      if (repo.index().Find(d, &loc, nullptr)) all += kRecordHeaderSize + loc.stored_len;
    }
    s.copies[i].shared_stored = all - s.copies[i].unique_stored;
  }
  LM_ASSIGN_OR_RETURN(auto packs, repo.backend().List("packs/"));
  double fill_sum = 0;
  for (const ObjectInfo& o : packs) {
    PackId id;
    if (!ParsePackName(o.name, &id) || o.size == 0) continue;
    s.packs++;
    s.pack_bytes += o.size;
    double fill = std::min(1.0, double(used_in_pack[id]) / double(o.size));
    fill_sum += fill;
    s.min_pack_fill = std::min(s.min_pack_fill, fill);
  }
  s.mean_pack_fill = s.packs ? fill_sum / double(s.packs) : 1;
  if (!only_vm.empty()) {
    std::vector<CopyStats> mine;
    for (auto& c : s.copies)
      if (c.vm == only_vm) mine.push_back(c);
    if (mine.empty()) return Status::NotFound(repo.path() + ": VM '" + only_vm + "' has no backup copies");
    s.copies = std::move(mine);
  }
  return s;
}

}  // namespace lm

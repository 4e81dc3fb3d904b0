#include "profile/prestage.h"

#include <atomic>
#include <chrono>
#include <map>
#include <thread>
#include <unordered_set>

#include "store/backend/io_kind.h"

namespace lm {

Result<std::vector<Digest>> ProfileChunks(Repository& repo, const BackupRef& b, const Profile& p,
                                          bool all, uint64_t* profile_chunks, uint64_t* missing) {
  LM_ASSIGN_OR_RETURN(BackupManifest m, repo.LoadManifest(b));
  std::map<std::string, const FileEntry*> files;
  for (auto& f : m.files)
    if (f.type == FileType::kFile) files[f.path] = &f;
  std::map<std::string, FileChunks> loaded;
  auto chunks_of = [&](const FileEntry& f) -> Result<const FileChunks*> {
    auto it = loaded.find(f.path);
    if (it == loaded.end()) {
      LM_ASSIGN_OR_RETURN(FileChunks fc, repo.LoadFileChunks(b, f));
      it = loaded.emplace(f.path, std::move(fc)).first;
    }
    return &it->second;
  };
  std::vector<Digest> out;
  std::unordered_set<Digest, DigestHash> seen;
  auto add = [&](const Digest& d) {
    if (!d.IsZero() && seen.insert(d).second) out.push_back(d);
  };
  *missing = 0;
  for (const ProfileEntry& e : p.entries) {
    auto f = files.find(e.file);
    if (f == files.end()) {
      (*missing)++;
      continue;
    }
    LM_ASSIGN_OR_RETURN(const FileChunks* fc, chunks_of(*f->second));
    for (auto [off, len] : e.ranges) {
      if (len == 0 || off >= fc->file_size) continue;
      uint64_t end = std::min(fc->file_size, off + len);
      for (uint64_t i = off / fc->chunk_size; i <= (end - 1) / fc->chunk_size; i++) add(fc->digests[i]);
    }
  }
  *profile_chunks = out.size();
  if (all) {
    for (auto& [path, f] : files) {
      LM_ASSIGN_OR_RETURN(const FileChunks* fc, chunks_of(*f));
      for (const Digest& d : fc->digests) add(d);
    }
  }
  return out;
}

Result<PrestageSummary> Prestage(Repository& repo, ChunkSource& source, const BackupRef& b, const Profile& p,
                                 const PrestageOptions& o) {
  auto start = std::chrono::steady_clock::now();
  PrestageSummary sum;
  LM_ASSIGN_OR_RETURN(auto digests, ProfileChunks(repo, b, p, o.all, &sum.profile_chunks,
                                                  &sum.missing_files));
  sum.total_chunks = digests.size();
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> done{0}, cached{0}, fetched{0}, failed{0}, bytes{0};
  // Workers take batches of neighbouring chunks of the list (profile order): fetched
  // together, those that sit next to each other in a pack come with one request.
  constexpr size_t kBatch = 32;
  auto worker = [&] {
    std::vector<Digest> batch;
    for (size_t first; (first = next.fetch_add(kBatch)) < digests.size();) {
      size_t last = std::min(digests.size(), first + kBatch);
      if (o.cancel && o.cancel->load()) {
        done += last - first;
        continue;
      }
      batch.clear();
      for (size_t i = first; i < last; i++) {
        if (source.cache().Contains(digests[i])) cached++;
        else batch.push_back(digests[i]);
      }
      // The profile's chunks first, then (with --all) hydration of the rest.
      ScopedIoKind kind(first < sum.profile_chunks ? IoKind::kPrestage : IoKind::kHydrate);
      auto r = source.EnsureBatch(batch, b.Name() + " (prestage)", true);
      fetched += r.fetched + r.joined;
      failed += r.failed;
      bytes += r.bytes;
      if (o.staged_chunks) *o.staged_chunks += r.fetched;
      done += last - first;
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < std::max(1u, o.threads); t++) pool.emplace_back(worker);
  while (done < digests.size()) {
    if (o.progress) o.progress(done, digests.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& t : pool) t.join();
  source.Drain();  // every fetched chunk is in the cache before we report
  if (o.pin_until > 0 || o.pin_session) {
    for (const Digest& d : digests) (void)source.cache().Pin(d, o.pin_until);
  }
  if (o.progress) o.progress(done, digests.size());
  sum.already_cached = cached;
  sum.fetched = fetched;
  sum.failed = failed;
  sum.bytes_fetched = bytes;
  if (o.staged_bytes) *o.staged_bytes += sum.bytes_fetched;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return sum;
}

}  // namespace lm

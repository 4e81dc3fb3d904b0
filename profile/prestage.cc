#include "profile/prestage.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
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

namespace {

struct FetchTask {
  std::vector<Digest> chunks;  // one ranged read of the repository
  bool hydrate = false;        // beyond the profile (--all)
  uint64_t bytes = 0;          // the chunks' decompressed sizes
};

constexpr int kHydrateNice = 10;  // about a tenth of a busy core against normal threads
constexpr int kIoprioWhoProcess = 1, kIoprioIdle = 3 << 13;  // linux/ioprio.h: IOPRIO_CLASS_IDLE

// The order of the fetches: the list in windows (boot order, window by window), each
// window's chunks grouped as the repository reads them together, groups in the order of
// their first chunk. Close enough to boot order that the guest finds what it reads next,
// and each fetch one request: with many in flight, an object store's round trip is paid
// once per run of neighbours, not once per chunk. Windows grow from 32 chunks to 512
// (64 MiB of 128 KiB chunks): what a boot reads first comes first. Hydration fetches hold
// at most 16 chunks (2 MiB), so a guest read that meets one waits little.
std::vector<FetchTask> PlanFetches(const Repository& repo, const std::vector<Digest>& digests, size_t profile_chunks) {
  constexpr size_t kFirstWindow = 32, kWindow = 512, kHydrateFetchChunks = 16;
  std::vector<FetchTask> tasks;
  size_t window_size = kFirstWindow;
  for (size_t first = 0; first < digests.size();) {
    size_t boundary = first < profile_chunks ? profile_chunks : digests.size();
    size_t last = std::min({digests.size(), first + window_size, boundary});
    window_size = std::min(kWindow, window_size * 2);
    std::vector<Digest> window(digests.begin() + first, digests.begin() + last);
    std::vector<uint64_t> raw_bytes;
    auto groups = repo.GroupByRead(window, &raw_bytes);
    std::vector<size_t> order(groups.size());  // groups by their first chunk in the window
    for (size_t g = 0; g < groups.size(); g++) order[g] = g;
    auto first_of = [&](size_t g) { return *std::min_element(groups[g].begin(), groups[g].end()); };
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return first_of(a) < first_of(b); });
    const bool hydrate = first >= profile_chunks;
    for (size_t g : order) {
      // An unknown chunk (a newer index will place it) counts as a whole chunk.
      uint64_t group_bytes = raw_bytes[g] ? raw_bytes[g] : repo.chunk_size();
      // Hydration reads the rest of the disk while the guest runs: a guest miss on a chunk
      // of a hydration fetch under way waits for that whole fetch, so they are kept short.
      size_t piece = hydrate ? kHydrateFetchChunks : groups[g].size();
      for (size_t from = 0; from < groups[g].size(); from += piece) {
        size_t to = std::min(groups[g].size(), from + piece);
        FetchTask t{{}, hydrate, group_bytes * (to - from) / groups[g].size()};
        for (size_t k = from; k < to; k++) t.chunks.push_back(window[groups[g][k]]);
        tasks.push_back(std::move(t));
      }
    }
    first = last;
  }
  return tasks;
}

}  // namespace

Result<PrestageSummary> Prestage(Repository& repo, ChunkSource& source, const BackupRef& b, const Profile& p,
                                 const PrestageOptions& o) {
  auto start = std::chrono::steady_clock::now();
  PrestageSummary sum;
  LM_ASSIGN_OR_RETURN(auto digests, ProfileChunks(repo, b, p, o.all, &sum.profile_chunks,
                                                  &sum.missing_files));
  sum.total_chunks = digests.size();
  const std::vector<FetchTask> tasks = PlanFetches(repo, digests, sum.profile_chunks);
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> done{0}, cached{0}, fetched{0}, failed{0}, bytes{0};
  uint64_t planned_bytes = 0;
  for (const FetchTask& t : tasks) planned_bytes += t.bytes;
  if (o.remaining_chunks) *o.remaining_chunks += digests.size();
  if (o.remaining_bytes) *o.remaining_bytes += planned_bytes;
  for (const FetchTask& t : tasks) {
    std::atomic<uint64_t>* share = t.hydrate ? o.hydrate_remaining_bytes : o.profile_remaining_bytes;
    if (share) *share += t.bytes;
  }
  // A guest miss on a chunk of a profile fetch no worker has taken yet takes that whole
  // fetch (one request, led by the guest's read: what it reads next comes along); the
  // workers then skip it. Not a hydration fetch: a guest's random read there would wait
  // for a run of chunks it will not read soon.
  std::unordered_map<Digest, size_t, DigestHash> task_of;  // the profile's fetches only
  for (size_t t = 0; t < tasks.size() && !tasks[t].hydrate; t++)
    for (const Digest& d : tasks[t].chunks) task_of.emplace(d, t);
  std::vector<std::atomic<bool>> taken(tasks.size());
  ChunkSource::PlannerRegistration planner(source, [&](const Digest& d) -> std::vector<Digest> {
    auto it = task_of.find(d);
    if (it == task_of.end() || taken[it->second].exchange(true)) return {};
    return tasks[it->second].chunks;
  });
  auto finished = [&](const FetchTask& t) {
    done += t.chunks.size();
    if (o.remaining_chunks) *o.remaining_chunks -= t.chunks.size();
    if (o.remaining_bytes) *o.remaining_bytes -= t.bytes;
    std::atomic<uint64_t>* share = t.hydrate ? o.hydrate_remaining_bytes : o.profile_remaining_bytes;
    if (share) *share -= t.bytes;
  };
  auto worker = [&] {
    std::vector<Digest> batch;
    bool lowered = false;
    for (size_t t; (t = next++) < tasks.size();) {
      const FetchTask& task = tasks[t];
      if (task.hydrate && !lowered) {
        // Hydration's checksums and copies take both cores of a small media agent: the
        // guest's own misses, and the hypervisor beside it, come first. Every task after
        // this one hydrates too (the profile's come first), so this thread stays lowered.
        (void)::setpriority(PRIO_PROCESS, ::gettid(), kHydrateNice);
        // Its pack reads likewise wait for other reads (the disk's scheduler permitting:
        // mq-deadline and bfq order by I/O priority class).
        (void)::syscall(SYS_ioprio_set, kIoprioWhoProcess, ::gettid(), kIoprioIdle);
        lowered = true;
      }
      if (taken[t].exchange(true) || (o.cancel && o.cancel->load())) {
        finished(task);
        continue;
      }
      batch.clear();
      for (const Digest& d : task.chunks) {
        if (source.cache().Contains(d)) cached++;
        else batch.push_back(d);
      }
      // The profile's chunks are what the guest reads next: they never wait for its reads
      // (a guest miss is fetched at once, beside them). Hydration of the rest yields.
      ScopedIoKind kind(task.hydrate ? IoKind::kHydrate : IoKind::kPrestage);
      auto r = source.EnsureBatch(batch, b.Name() + " (prestage)", task.hydrate);
      fetched += r.fetched + r.joined;
      failed += r.failed;
      bytes += r.bytes;
      if (o.staged_chunks) *o.staged_chunks += r.fetched;
      if (o.staged_bytes) *o.staged_bytes += r.bytes;
      finished(task);
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
    for (const Digest& d : digests) {
      if (source.cache().Pin(d, o.pin_until).ok() && o.pinned) o.pinned->push_back(d);
    }
  }
  if (o.progress) o.progress(done, digests.size());
  sum.already_cached = cached;
  sum.fetched = fetched;
  sum.failed = failed;
  sum.bytes_fetched = bytes;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return sum;
}

}  // namespace lm

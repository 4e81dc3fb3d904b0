// lm_index_bench: the chunk index at the scale of a real repository (issue 15, "Scale").
//
//   lm_index_bench synth REPO N
//       adds index objects naming N synthetic chunks (digests of "synthetic-<i>", in packs
//       that do not exist) to an unencrypted local repository, 4,096 chunks per object as a
//       backup writes them (16 packs of 256): a repository that large, without its data.
//   lm_index_bench lookup REPO N [--memory] [--cache-dir DIR] [--lookups K]
//       opens REPO as the livemount commands do (its chunk index in DIR/chunk-index, or in
//       memory) and prints, as one JSON line: the time to open (the first open of a disk
//       table loads every index object), the resident memory after it (VmRSS, VmHWM), and
//       lookups per second of synthetic chunks (hits) and of unknown digests (misses, what
//       a backup of new data asks), on one thread and on two.
#include <fmt/core.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "cache/chunk_table_db.h"
#include "store/backend/backend.h"
#include "store/chunk_index.h"
#include "store/repository.h"

using namespace lm;

namespace {
constexpr int kPacksPerObject = 16, kChunksPerPack = 256;

Digest Synthetic(uint64_t i) { return Digest::Of("synthetic-" + std::to_string(i)); }

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// VmRSS and VmHWM of this process, in MiB.
std::pair<double, double> ResidentMiB() {
  std::ifstream f("/proc/self/status");
  double rss = 0, hwm = 0;
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::stod(line.substr(6)) / 1024;
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::stod(line.substr(6)) / 1024;
  }
  return {rss, hwm};
}

int Synth(const std::string& repo_path, uint64_t n) {
  auto config = ReadRepoConfig(repo_path, Env::Default());
  if (!config.ok()) return fmt::print(stderr, "{}\n", config.status().message()), 1;
  if (config->encrypted) return fmt::print(stderr, "{}: synthetic index objects need an unencrypted repository\n", repo_path), 1;
  auto backend = OpenBackend(repo_path, Env::Default());
  if (!backend.ok()) return fmt::print(stderr, "{}\n", backend.status().message()), 1;
  auto start = std::chrono::steady_clock::now();
  int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  uint64_t objects = 0;
  for (uint64_t i = 0; i < n; objects++) {
    IndexFileContents c;
    for (int p = 0; p < kPacksPerObject && i < n; p++) {
      std::vector<PackEntry> entries;
      uint64_t offset = 16;
      for (int k = 0; k < kChunksPerPack && i < n; k++, i++) {
        entries.push_back(PackEntry{Synthetic(i), offset, 70000, 131072, Codec::kZstd});
        offset += 70000 + kRecordHeaderSize;
      }
      c.packs.push_back({RandomHex(16), std::move(entries)});
    }
    // Names one nanosecond apart keep their order and their time (IndexNameTime).
    Status s = (*backend)->Create(NewIndexName(now_ns + int64_t(objects)), EncodeIndexFile(c));
    if (!s.ok()) return fmt::print(stderr, "{}\n", s.message()), 1;
  }
  fmt::print("{{\"chunks\": {}, \"index_objects\": {}, \"seconds\": {:.1f}}}\n", n, objects, Seconds(start));
  return 0;
}

// Lookups per second of `digests` from `threads` threads.
double Rate(const ChunkIndex& index, const std::vector<Digest>& digests, int threads, uint64_t* found) {
  std::atomic<uint64_t> hits{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; t++) {
    workers.emplace_back([&, t] {
      uint64_t mine = 0;
      ChunkLocation loc;
      PackId pack;
      for (size_t i = t; i < digests.size(); i += threads) mine += index.Find(digests[i], &loc, &pack);
      hits += mine;
    });
  }
  for (auto& w : workers) w.join();
  *found = hits;
  return digests.size() / Seconds(start);
}

int Lookup(const std::string& repo_path, uint64_t n, bool memory, const std::string& cache_dir, uint64_t lookups) {
  RepoOptions o;
  o.env = Env::Default();
  if (!memory) o.chunk_table = DiskChunkTableOpener(cache_dir);
  auto start = std::chrono::steady_clock::now();
  auto repo = Repository::Open(repo_path, o);
  if (!repo.ok()) return fmt::print(stderr, "{}\n", repo.status().message()), 1;
  double open_s = Seconds(start);
  auto [rss, hwm] = ResidentMiB();
  std::mt19937_64 rng(42);
  std::vector<Digest> hits(lookups), misses(lookups);
  for (auto& d : hits) d = Synthetic(rng() % n);
  for (uint64_t i = 0; i < lookups; i++) misses[i] = Digest::Of("absent-" + std::to_string(i));
  ChunkIndex& index = (*repo)->index();
  uint64_t found_hits = 0, found_misses = 0, unused = 0;
  double hit1 = Rate(index, hits, 1, &found_hits), miss1 = Rate(index, misses, 1, &found_misses);
  double hit2 = Rate(index, hits, 2, &unused), miss2 = Rate(index, misses, 2, &unused);
  if (found_hits != lookups || found_misses != 0) {
    fmt::print(stderr, "lookups went wrong: {} of {} hits found, {} misses found\n", found_hits, lookups, found_misses);
    return 1;
  }
  auto [rss_after, hwm_after] = ResidentMiB();
  double vectors = 2.0 * lookups * sizeof(Digest) / (1 << 20);  // the digests looked up, not the index
  rss_after -= vectors;
  hwm_after -= vectors;
  fmt::print("{{\"index\": \"{}\", \"chunks\": {}, \"open_seconds\": {:.1f}, \"rss_mib\": {:.0f}, \"hwm_mib\": {:.0f}, "
             "\"rss_after_lookups_mib\": {:.0f}, \"hwm_after_lookups_mib\": {:.0f}, \"hits_per_s_1\": {:.0f}, \"misses_per_s_1\": {:.0f}, "
             "\"hits_per_s_2\": {:.0f}, \"misses_per_s_2\": {:.0f}}}\n",
             memory ? "memory" : "disk", index.size(), open_s, rss, hwm, rss_after, hwm_after,
             hit1, miss1, hit2, miss2);
  return 0;
}

int Usage() {
  fmt::print(stderr, "usage: lm_index_bench synth REPO N\n"
                     "       lm_index_bench lookup REPO N [--memory] [--cache-dir DIR] [--lookups K]\n");
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return Usage();
  std::string cmd = argv[1], repo = argv[2];
  uint64_t n = std::strtoull(argv[3], nullptr, 10);
  if (n == 0) return Usage();
  if (cmd == "synth") return Synth(repo, n);
  if (cmd != "lookup") return Usage();
  bool memory = false;
  std::string cache_dir = "/var/tmp/lm-index-bench-cache";
  uint64_t lookups = 1000000;
  for (int i = 4; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--memory") memory = true;
    else if (a == "--cache-dir" && i + 1 < argc) cache_dir = argv[++i];
    else if (a == "--lookups" && i + 1 < argc) lookups = std::strtoull(argv[++i], nullptr, 10);
    else return Usage();
  }
  if (lookups == 0) return Usage();
  return Lookup(repo, n, memory, cache_dir, lookups);
}

// ChunkSource: the read path below the filesystem. Serves byte ranges of a backed-up file
// from the read-cache, fetching misses from a ChunkReader, the repository (verify SHA-256,
// decompress, insert, reply). It is a ChunkReader itself (cache first), so guest parsers
// reading through a mount use the cache too. Concurrent misses on one chunk fetch it once.
// All-zero chunks are never fetched. Misses are fetched together where they come
// together (the missing chunks of one read, a run of read-ahead, a pre-stager batch), so
// the repository serves neighbours in a pack with one ranged read: on an object store a
// round trip costs tens of milliseconds. Read-ahead runs on a small pool; background
// fetches yield to foreground reads, and a foreground miss on a chunk already being
// fetched simply waits for that fetch.
//
// A damaged chunk is an error (Code::kCorrupt) for the ranges it covers, logged once with
// the chunk and the file; it is never served as zeros.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cache/read_cache.h"
#include "store/chunk_reader.h"
#include "store/file_reader.h"

namespace lm {

struct ChunkSourceOptions {
  unsigned fetch_threads = 4;  // background fetchers
  // Fetched bytes waiting for the cache insert beyond which pre-stages and read-ahead wait.
  size_t max_queued_insert_bytes = 64ull << 20;
  Status validate() const;
};

struct ChunkSourceStats {
  uint64_t reads = 0, bytes_read = 0, zero_bytes = 0;
  uint64_t fetches = 0, fetch_errors = 0, joined_fetches = 0;
  uint64_t readahead_queued = 0, readahead_fetched = 0;
  uint64_t background_yields = 0;  // background fetches that waited for guest reads first
  uint64_t planned_runs_taken = 0;  // pre-stager fetches a guest miss took over
};

class ChunkSource : public ChunkReader {
 public:
  static constexpr size_t kReadAheadBatch = 16;  // queued read-ahead chunks fetched together

  ChunkSource(ChunkReader& origin, ReadCache& cache, ChunkSourceOptions options = {});
  ~ChunkSource() override;

  // Reads [off, off+len) of the file into out; len is clipped to the file size by the
  // caller. `what` names the file in errors and logs ("vm@id:disk.vmdk").
  Status Read(const FileChunks& fc, const std::string& what, uint64_t off, size_t len, char* out);
  // Queues background fetches of these chunks (skipping cached and zero ones).
  void Prefetch(const std::vector<Digest>& digests, const std::string& what);
  // Waits until every queued background fetch and cache insert is done.
  void Drain();
  // Fetches one chunk into the cache now, unless cached. A background caller (the
  // pre-stager) passes background=true: it then waits while guest reads are fetching, so
  // guest reads go first.
  Status Ensure(const Digest& d, const std::string& what, bool background = false);
  // Ensure for a batch, fetched together: chunks next to each other in a pack come with one
  // request. Chunks cached or zero are skipped, chunks another thread is fetching are left
  // to it (joined), and a guest read that arrives meanwhile joins the batch's fetch. A batch
  // whose joint read fails is fetched chunk by chunk, so one damaged chunk fails alone.
  struct BatchResult {
    size_t fetched = 0, failed = 0, joined = 0;
    uint64_t bytes = 0;  // raw bytes fetched
  };
  BatchResult EnsureBatch(const std::vector<Digest>& digests, const std::string& what, bool background);

  // ChunkReader: one whole chunk, from the cache or fetched (and then cached).
  Status ReadChunk(const Digest& d, std::string* raw) override;
  uint32_t chunk_size() const override { return origin_.chunk_size(); }

  // A running pre-stager's plan, as a guest miss sees it: given a chunk the guest misses,
  // the chunks of the planned fetch it belongs to, if the pre-stager has not started that
  // fetch (it then leaves it to the guest), else nothing. The guest's miss then brings the
  // whole run with one request: it jumps the queue, and what it reads next comes along.
  using MissPlanner = std::function<std::vector<Digest>(const Digest&)>;
  class PlannerRegistration {
   public:
    PlannerRegistration(ChunkSource& source, MissPlanner planner);
    ~PlannerRegistration();
    PlannerRegistration(const PlannerRegistration&) = delete;
    PlannerRegistration& operator=(const PlannerRegistration&) = delete;

   private:
    ChunkSource& source_;
    std::list<MissPlanner>::iterator it_;
  };

  ChunkSourceStats Stats() const;
  ReadCache& cache() { return cache_; }

 private:
  struct Inflight {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Status status;
    std::shared_ptr<std::string> data;
  };
  // Returns the chunk's bytes, fetching them (once) if needed. The cache insert happens on
  // the inserter thread after the caller has its bytes; the in-flight entry stays until then,
  // so a reader arriving meanwhile takes the bytes from it instead of fetching again.
  Status Fetch(const Digest& d, const std::string& what, std::shared_ptr<std::string>* data);
  // Wakes the readers waiting on a fetch this thread led, and queues the cache insert.
  void Complete(const Digest& d, const std::shared_ptr<Inflight>& f, Status s,
                std::shared_ptr<std::string> raw, bool cached, const std::string& what);
  // Fetches these distinct, non-zero chunks together: leads the fetch of those nobody is
  // fetching (one joint read, chunk by chunk if it fails) and joins the others. With
  // data/status, waits for the first `needed` chunks and returns their bytes (the rest
  // only come along in the same read); without, leaves joined and cached chunks alone.
  BatchResult FetchMany(const std::vector<Digest>& digests, const std::string& what, bool background,
                        std::vector<std::shared_ptr<std::string>>* data, std::vector<Status>* status,
                        size_t needed = SIZE_MAX);
  void YieldToGuestReads();
  void FetchLoop();
  void InsertLoop();
  void Inserted(const Digest& d, size_t bytes);
  // Blocks while more than options_.max_queued_insert_bytes wait for the inserter.
  void WaitForInsertSpace();

  ChunkReader& origin_;
  ReadCache& cache_;
  ChunkSourceOptions options_;
  std::mutex mu_;
  std::unordered_map<Digest, std::shared_ptr<Inflight>, DigestHash> inflight_;
  std::condition_variable queue_cv_;
  std::deque<std::pair<Digest, std::shared_ptr<const std::string>>> queue_;  // digest, user
  int taken_batches_ = 0;  // read-ahead runs off the queue, not yet done (under mu_)
  bool stopping_ = false;
  std::vector<std::thread> fetchers_;
  std::condition_variable insert_cv_;
  std::deque<std::pair<Digest, std::shared_ptr<std::string>>> inserts_;
  size_t queued_insert_bytes_ = 0;  // in inserts_ or being inserted (under mu_)
  std::condition_variable insert_space_cv_;
  std::thread inserter_;
  std::mutex planners_mu_;
  std::list<MissPlanner> planners_;  // of the pre-stagers running now
  std::atomic<int> foreground_fetches_{0};  // guest reads waiting on the repository now
  std::atomic<uint64_t> yields_{0};
  std::atomic<uint64_t> reads_{0}, bytes_read_{0}, zero_bytes_{0}, fetches_{0}, fetch_errors_{0},
      joined_{0}, ra_queued_{0}, ra_fetched_{0}, runs_taken_{0};
};

}  // namespace lm

#include "cache/chunk_source.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "base/log.h"
#include "store/backend/io_kind.h"

namespace lm {

Status ChunkSourceOptions::validate() const {
  if (fetch_threads < 1 || fetch_threads > 64) return Status::Invalid("fetch threads must be 1-64");
  return Status::Ok();
}

ChunkSource::ChunkSource(ChunkReader& origin, ReadCache& cache, ChunkSourceOptions options)
    : origin_(origin), cache_(cache), options_(options) {
  for (unsigned i = 0; i < options_.fetch_threads; i++) fetchers_.emplace_back([this] { FetchLoop(); });
  inserter_ = std::thread([this] { InsertLoop(); });
}

ChunkSource::~ChunkSource() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  insert_cv_.notify_all();
  insert_space_cv_.notify_all();
  for (auto& t : fetchers_) t.join();
  inserter_.join();  // drains the pending inserts first
}

void ChunkSource::Drain() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (queue_.empty() && taken_batches_ == 0 && inflight_.empty() && inserts_.empty()) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void ChunkSource::InsertLoop() {
  for (;;) {
    std::pair<Digest, std::shared_ptr<std::string>> job;
    {
      std::unique_lock lock(mu_);
      insert_cv_.wait(lock, [&] { return stopping_ || !inserts_.empty(); });
      if (inserts_.empty()) return;  // stopping and drained
      job = std::move(inserts_.front());
      inserts_.pop_front();
    }
    Status ins = cache_.Insert(job.first, *job.second);
    if (!ins.ok() && ins.code() != Code::kNoSpace) {
      LogOnce(LogLevel::kWarn, "cache-insert", "read-cache insert failed: " + ins.message());
    }
    Inserted(job.first, job.second->size());
  }
}

void ChunkSource::Inserted(const Digest& d, size_t bytes) {
  {
    std::lock_guard lock(mu_);
    inflight_.erase(d);
    queued_insert_bytes_ -= bytes;
  }
  insert_space_cv_.notify_all();
}

void ChunkSource::WaitForInsertSpace() {
  std::unique_lock lock(mu_);
  insert_space_cv_.wait(lock, [&] { return stopping_ || queued_insert_bytes_ <= options_.max_queued_insert_bytes; });
}

Status ChunkSource::Fetch(const Digest& d, const std::string& what,
                          std::shared_ptr<std::string>* data) {
  std::shared_ptr<Inflight> f;
  bool leader = false;
  {
    std::lock_guard lock(mu_);
    auto it = inflight_.find(d);
    if (it != inflight_.end()) {
      f = it->second;
    } else {
      f = std::make_shared<Inflight>();
      inflight_.emplace(d, f);
      leader = true;
    }
  }
  if (!leader) {
    joined_++;
    std::unique_lock lock(f->mu);
    f->cv.wait(lock, [&] { return f->done; });
    *data = f->data;
    return f->status;
  }
  auto raw = std::make_shared<std::string>();
  // Another fetch may have finished between our cache miss and becoming the leader.
  bool cached = cache_.ReadWhole(d, raw.get()).ok();
  Status s = cached ? Status::Ok() : origin_.ReadChunk(d, raw.get());
  Complete(d, f, s, raw, cached, what);
  *data = std::move(raw);
  return s;
}

void ChunkSource::Complete(const Digest& d, const std::shared_ptr<Inflight>& f, Status s,
                           std::shared_ptr<std::string> raw, bool cached, const std::string& what) {
  if (!cached) fetches_++;
  if (!s.ok()) {
    fetch_errors_++;
    LogOnce(LogLevel::kError, "chunk-" + d.Hex(),
            "damaged or missing chunk " + d.ShortHex() + " (used by " + what + "): " + s.message());
  }
  {
    std::lock_guard lock(f->mu);
    f->status = s;
    f->data = raw;
    f->done = true;
  }
  f->cv.notify_all();
  {
    std::lock_guard lock(mu_);
    if (s.ok() && !cached && !stopping_) {
      queued_insert_bytes_ += raw->size();
      inserts_.push_back({d, std::move(raw)});  // the in-flight entry goes when the insert is done
    } else {
      inflight_.erase(d);  // errors are not remembered: the next read tries again
    }
  }
  insert_cv_.notify_one();
}

Status ChunkSource::Read(const FileChunks& fc, const std::string& what, uint64_t off, size_t len,
                         char* out) {
  reads_++;
  bytes_read_ += len;
  std::vector<ChunkSlice> misses;
  LM_RETURN_IF_ERROR(ForEachChunkSlice(fc, off, len, [&](const ChunkSlice& s) {
    char* dst = out + s.out_offset;
    const Digest& d = *s.digest;
    if (d.IsZero()) {
      std::memset(dst, 0, s.n);
      zero_bytes_ += s.n;
    } else if (!cache_.Read(d, s.in_chunk, s.n, dst).ok()) {
      misses.push_back(s);
    }
    return Status::Ok();
  }));
  if (misses.empty()) return Status::Ok();
  // A read spanning several missing chunks fetches them together: neighbours in a pack
  // come with one request instead of one round trip each. So do the rest of a pre-stager's
  // planned fetch that one of them belongs to (after the guest's own chunks).
  std::vector<Digest> wanted;
  for (const ChunkSlice& s : misses) {
    if (std::find(wanted.begin(), wanted.end(), *s.digest) == wanted.end()) wanted.push_back(*s.digest);
  }
  const size_t own = wanted.size();
  {
    std::lock_guard lock(planners_mu_);
    for (const MissPlanner& plan : planners_) {
      for (size_t i = 0; i < own; i++) {
        std::vector<Digest> run = plan(wanted[i]);
        if (!run.empty()) runs_taken_++;
        for (const Digest& d : run) {
          if (std::find(wanted.begin(), wanted.end(), d) == wanted.end()) wanted.push_back(d);
        }
      }
    }
  }
  std::vector<std::shared_ptr<std::string>> data;
  std::vector<Status> status;
  foreground_fetches_++;
  {
    ScopedIoKind kind(IoKind::kGuest);  // first in the object store's queue
    FetchMany(wanted, what, /*background=*/false, &data, &status, own);
  }
  foreground_fetches_--;
  for (const ChunkSlice& s : misses) {
    size_t i = std::find(wanted.begin(), wanted.end(), *s.digest) - wanted.begin();
    if (!status[i].ok()) {
      return status[i].Context(what + " at offset " + std::to_string(s.index * uint64_t{fc.chunk_size}));
    }
    if (data[i]->size() < size_t{s.in_chunk} + s.n) {
      return Status::Corrupt(what + ": chunk " + s.digest->ShortHex() + " is shorter than its file index says");
    }
    std::memcpy(out + s.out_offset, data[i]->data() + s.in_chunk, s.n);
  }
  return Status::Ok();
}

ChunkSource::PlannerRegistration::PlannerRegistration(ChunkSource& source, MissPlanner planner) : source_(source) {
  std::lock_guard lock(source_.planners_mu_);
  it_ = source_.planners_.insert(source_.planners_.end(), std::move(planner));
}

ChunkSource::PlannerRegistration::~PlannerRegistration() {
  std::lock_guard lock(source_.planners_mu_);
  source_.planners_.erase(it_);
}

Status ChunkSource::ReadChunk(const Digest& d, std::string* raw) {
  if (cache_.ReadWhole(d, raw).ok()) return Status::Ok();
  std::shared_ptr<std::string> data;
  foreground_fetches_++;
  Status s = Fetch(d, "chunk " + d.ShortHex(), &data);
  foreground_fetches_--;
  LM_RETURN_IF_ERROR(s);
  *raw = *data;
  return Status::Ok();
}

void ChunkSource::YieldToGuestReads() {
  // Bounded, so a steady stream of guest reads cannot stall a background fetch forever.
  if (foreground_fetches_ > 0) yields_++;
  for (int i = 0; foreground_fetches_ > 0 && i < 200; i++) {
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

Status ChunkSource::Ensure(const Digest& d, const std::string& what, bool background) {
  if (d.IsZero() || cache_.Contains(d)) return Status::Ok();
  if (background) YieldToGuestReads();
  std::shared_ptr<std::string> data;
  return Fetch(d, what, &data);
}

ChunkSource::BatchResult ChunkSource::EnsureBatch(const std::vector<Digest>& digests, const std::string& what,
                                                  bool background) {
  std::vector<Digest> unique;
  for (const Digest& d : digests) {
    if (!d.IsZero() && std::find(unique.begin(), unique.end(), d) == unique.end()) unique.push_back(d);
  }
  return FetchMany(unique, what, background, nullptr, nullptr);
}

ChunkSource::BatchResult ChunkSource::FetchMany(const std::vector<Digest>& digests, const std::string& what,
                                                bool background, std::vector<std::shared_ptr<std::string>>* data,
                                                std::vector<Status>* status, size_t needed) {
  BatchResult r;
  const bool wait = data != nullptr;
  enum class Role { kCached, kLead, kJoin };
  std::vector<Role> role(digests.size());
  std::vector<std::shared_ptr<Inflight>> flight(digests.size());
  std::vector<Digest> led;
  {
    // Under mu_, "not in flight and not in the cache" is exact: an in-flight entry stays
    // until its chunk is in the cache.
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < digests.size(); i++) {
      const Digest& d = digests[i];
      if (auto it = inflight_.find(d); it != inflight_.end()) {
        role[i] = Role::kJoin;
        flight[i] = it->second;
        r.joined++;
      } else if (cache_.Contains(d)) {
        role[i] = Role::kCached;
      } else {
        role[i] = Role::kLead;
        flight[i] = std::make_shared<Inflight>();
        inflight_.emplace(d, flight[i]);  // readers arriving now wait for this fetch
        led.push_back(d);
      }
    }
  }
  joined_ += r.joined;
  if (wait) {
    data->assign(digests.size(), nullptr);
    status->assign(digests.size(), Status::Ok());
  }
  if (!led.empty()) {
    if (background) YieldToGuestReads();
    std::vector<std::string> raws;
    Status joint = origin_.ReadChunks(led, &raws);
    for (size_t i = 0, k = 0; i < digests.size(); i++) {
      if (role[i] != Role::kLead) continue;
      auto raw = std::make_shared<std::string>();
      Status s = joint;
      if (joint.ok()) raw->swap(raws[k]);
      else s = origin_.ReadChunk(led[k], raw.get());  // alone, so one bad chunk fails alone
      k++;
      if (s.ok()) {
        r.fetched++;
        r.bytes += raw->size();
      } else {
        r.failed++;
      }
      if (wait) (*data)[i] = raw, (*status)[i] = s;
      Complete(digests[i], flight[i], s, std::move(raw), false, what);
    }
    // A pre-stage or read-ahead goes no faster than the cache takes its chunks: without
    // this, a hydration held most of the disk in memory, queued for the inserter. Guest
    // reads never wait here.
    if (background) WaitForInsertSpace();
  }
  if (!wait) return r;
  // Only after completing the fetches this call leads: two callers joining each other's
  // chunks never wait on each other.
  for (size_t i = 0; i < std::min(needed, digests.size()); i++) {
    if (role[i] == Role::kJoin) {
      std::unique_lock lock(flight[i]->mu);
      flight[i]->cv.wait(lock, [&] { return flight[i]->done; });
      (*data)[i] = flight[i]->data;
      (*status)[i] = flight[i]->status;
    } else if (role[i] == Role::kCached) {
      auto raw = std::make_shared<std::string>();
      (*status)[i] = cache_.ReadWhole(digests[i], raw.get()).ok() ? Status::Ok() : Fetch(digests[i], what, &raw);
      (*data)[i] = std::move(raw);
    }
  }
  return r;
}

void ChunkSource::Prefetch(const std::vector<Digest>& digests, const std::string& what) {
  size_t queued = 0;
  auto user = std::make_shared<const std::string>(what);
  {
    std::lock_guard lock(mu_);
    for (const Digest& d : digests) {
      if (d.IsZero() || inflight_.count(d) || cache_.Contains(d)) continue;
      queue_.push_back({d, user});
      queued++;
    }
  }
  ra_queued_ += queued;
  if (queued) queue_cv_.notify_all();
}

void ChunkSource::FetchLoop() {
  for (;;) {
    // Read-ahead of one file queues its next chunks in order: take a run of them, so
    // neighbours in a pack come with one request.
    std::vector<Digest> batch;
    std::shared_ptr<const std::string> what;
    {
      std::unique_lock lock(mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      what = queue_.front().second;
      while (!queue_.empty() && queue_.front().second == what && batch.size() < kReadAheadBatch) {
        if (!inflight_.count(queue_.front().first)) batch.push_back(queue_.front().first);
        queue_.pop_front();
      }
      if (batch.empty()) continue;
      taken_batches_++;  // off the queue and not yet in flight: Drain must still wait
    }
    ScopedIoKind kind(IoKind::kHydrate);  // read-ahead: behind guest reads and the pre-stager
    ra_fetched_ += EnsureBatch(batch, *what, false).fetched;
    std::lock_guard lock(mu_);
    taken_batches_--;
  }
}

ChunkSourceStats ChunkSource::Stats() const {
  ChunkSourceStats s;
  s.reads = reads_;
  s.bytes_read = bytes_read_;
  s.zero_bytes = zero_bytes_;
  s.fetches = fetches_;
  s.fetch_errors = fetch_errors_;
  s.joined_fetches = joined_;
  s.readahead_queued = ra_queued_;
  s.readahead_fetched = ra_fetched_;
  s.background_yields = yields_;
  s.planned_runs_taken = runs_taken_;
  return s;
}

}  // namespace lm

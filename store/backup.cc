#include "store/backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <optional>
#include <unordered_set>

#include "base/state_layout.h"
#include "base/units.h"
#include "store/vm_scan.h"

#include <nlohmann/json.hpp>

namespace lm {

Status BackupOptions::validate() const {
  LM_RETURN_IF_ERROR(CheckVmName(vm));
  if (vmdir.empty()) return Status::Invalid("no VM directory given");
  if (compression_level < 0 || compression_level > 19) {
    return Status::Invalid("compression level must be 0 to 19");
  }
  if (pack_target_bytes < (1 << 20)) return Status::Invalid("pack size below 1 MiB");
  LM_RETURN_IF_ERROR(CheckRange("--threads", threads, 0, 256));
  return Status::Ok();
}

namespace {

constexpr size_t kBatchChunks = 32;
constexpr size_t kPacksPerIndexFile = 16;

// Shared state of one backup run.
class BackupWriter {
 public:
  BackupWriter(Repository& repo, const BackupOptions& o)
      : repo_(repo), o_(o), finisher_([this] { FinisherLoop(); }) {}
  ~BackupWriter() { (void)StopFinisher(); }

  // Chunks one open file into `chunks`, storing what is new.
  // `known`, if set, gives the digests of chunks that are not to be read (BackupOptions).
  Status ChunkFile(int fd, const std::string& path, FileChunks* chunks, unsigned threads,
                   const std::function<std::optional<Digest>(uint64_t)>& known = {});
  // Finishes the open pack and writes the last index file.
  Status Finish();

  std::atomic<uint64_t> done_bytes{0}, new_stored{0}, new_raw{0}, new_chunks{0}, zero_chunks{0},
      chunks{0};

 private:
  // A new chunk compressed (and sealed), ready for a pack.
  struct Record {
    Digest digest;
    Codec codec;
    uint32_t raw_len;
    std::string payload;
  };
  // Compresses and seals `raw` into *out unless the repository or this run has it already
  // (false then).
  Result<bool> PrepareChunk(const Digest& d, std::string_view raw, Record* out);
  // Appends a worker's records to the open pack together, so that the chunks of one batch
  // of a file lie next to each other in the pack (a restore or a mount reads them with one
  // request), not interleaved with another worker's.
  Status AppendRecords(std::vector<Record>& records, size_t n);
  Status FinishPack(PackWriter pack);
  // Full packs are fsynced and renamed on a thread of their own, so that the workers
  // keep hashing and compressing while the disk writes.
  void QueuePack(PackWriter pack);
  void FinisherLoop();
  Status StopFinisher();
  Status FinisherError();
  Status WriteIndexFile(std::vector<std::pair<PackId, std::vector<PackEntry>>> packs);

  Repository& repo_;
  const BackupOptions& o_;
  std::mutex claim_mu_;
  std::unordered_set<Digest, DigestHash> claimed_;  // new this run, maybe not in a pack yet
  std::mutex pack_mu_;
  std::optional<PackWriter> pack_;
  std::optional<PackWriter> spare_;  // made by a worker that lost the race to make pack_
  std::mutex index_mu_;
  std::vector<std::pair<PackId, std::vector<PackEntry>>> unindexed_;
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<PackWriter> queue_;
  bool stopping_ = false;
  Status finisher_error_;
  std::thread finisher_;  // last: started after everything it uses
};

void BackupWriter::QueuePack(PackWriter pack) {
  std::lock_guard lock(queue_mu_);
  queue_.push_back(std::move(pack));
  queue_cv_.notify_one();
}

void BackupWriter::FinisherLoop() {
  std::unique_lock lock(queue_mu_);
  for (;;) {
    queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left
    PackWriter pack = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    Status s = finisher_error_.ok() ? FinishPack(std::move(pack)) : Status::Ok();
    lock.lock();
    if (!s.ok() && finisher_error_.ok()) finisher_error_ = s;
  }
}

Status BackupWriter::StopFinisher() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
    queue_cv_.notify_one();
  }
  if (finisher_.joinable()) finisher_.join();
  return finisher_error_;
}

Status BackupWriter::FinisherError() {
  std::lock_guard lock(queue_mu_);
  return finisher_error_;
}

Result<bool> BackupWriter::PrepareChunk(const Digest& d, std::string_view raw, Record* out) {
  if (repo_.index().Contains(d)) return false;
  {
    std::lock_guard lock(claim_mu_);
    if (!claimed_.insert(d).second) return false;
  }
  out->digest = d;
  out->raw_len = static_cast<uint32_t>(raw.size());
  out->codec = CompressChunk(raw, o_.compression_level, &out->payload);
  const RepoCrypto& crypto = repo_.crypto();
  if (crypto.encrypted()) {
    // Sealed here, outside the pack lock, so backup threads encrypt in parallel.
    thread_local std::string sealed;
    uint32_t stored_len = static_cast<uint32_t>(crypto.StoredSize(out->payload.size()));
    LM_RETURN_IF_ERROR(crypto.SealPayload(EncodeRecordHeader(d, out->codec, out->raw_len, stored_len),
                                          out->payload, &sealed));
    out->payload.swap(sealed);
  }
  return true;
}

Status BackupWriter::AppendRecords(std::vector<Record>& records, size_t n) {
  std::vector<PackWriter> full;
  {
    std::unique_lock lock(pack_mu_);
    for (size_t i = 0; i < n; i++) {
      const Record& r = records[i];
      while (!pack_) {
        if (spare_) {
          pack_.swap(spare_);
          break;
        }
        // Creating a pack may make its folder and fsync the parent: tens of milliseconds
        // that other workers must not wait for behind the lock.
        lock.unlock();
        auto made = PackWriter::Create(repo_.backend());
        lock.lock();
        if (!made.ok()) return made.status();
        (pack_ ? spare_ : pack_).emplace(std::move(*made));
      }
      LM_RETURN_IF_ERROR(pack_->Append(r.digest, r.codec, r.raw_len, r.payload));
      new_stored += kRecordHeaderSize + r.payload.size();
      new_raw += r.raw_len;
      new_chunks++;
      if (pack_->size() >= o_.pack_target_bytes) {
        full.push_back(std::move(*pack_));
        pack_.reset();
      }
    }
  }
  for (auto& p : full) {
    LM_RETURN_IF_ERROR(FinisherError());
    QueuePack(std::move(p));
  }
  return Status::Ok();
}

Status BackupWriter::FinishPack(PackWriter pack) {
  LM_RETURN_IF_ERROR(pack.Finish());
  std::vector<std::pair<PackId, std::vector<PackEntry>>> batch;
  {
    std::lock_guard lock(index_mu_);
    unindexed_.push_back({pack.id(), pack.entries()});
    if (unindexed_.size() < kPacksPerIndexFile) return Status::Ok();
    batch.swap(unindexed_);
  }
  return WriteIndexFile(std::move(batch));
}

Status BackupWriter::WriteIndexFile(std::vector<std::pair<PackId, std::vector<PackEntry>>> packs) {
  if (packs.empty()) return Status::Ok();
  IndexFileContents c{std::move(packs)};
  std::string name = NewIndexName(repo_.env()->NowMicros() * 1000);
  LM_RETURN_IF_ERROR(repo_.WriteObject(name, EncodeIndexFile(c)));
  return repo_.index().Add(name, c);
}

Status BackupWriter::Finish() {
  LM_RETURN_IF_ERROR(StopFinisher());
  std::optional<PackWriter> last;
  {
    std::lock_guard lock(pack_mu_);
    last.swap(pack_);
    spare_.reset();  // never committed: its temporary object goes
  }
  if (last) {
    LM_RETURN_IF_ERROR(last->Finish());
    std::lock_guard lock(index_mu_);
    unindexed_.push_back({last->id(), last->entries()});
  }
  std::vector<std::pair<PackId, std::vector<PackEntry>>> rest;
  {
    std::lock_guard lock(index_mu_);
    rest.swap(unindexed_);
  }
  return WriteIndexFile(std::move(rest));
}

Status BackupWriter::ChunkFile(int fd, const std::string& path, FileChunks* fc, unsigned threads,
                               const std::function<std::optional<Digest>(uint64_t)>& known) {
  const uint64_t cs = fc->chunk_size;
  const uint64_t nchunks = fc->digests.size();
  const RepoCrypto& crypto = repo_.crypto();
  const uint64_t nbatches = (nchunks + kBatchChunks - 1) / kBatchChunks;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex err_mu;
  Status first_error;
  // Where the file ended as the workers saw it: below fc->file_size when it shrank while
  // being read. Bytes past it were never read and are never stored (no invented zeros).
  std::atomic<uint64_t> eof{fc->file_size};
  auto note_eof = [&](uint64_t at) {
    uint64_t cur = eof.load();
    while (at < cur && !eof.compare_exchange_weak(cur, at)) {
    }
  };

  auto worker = [&] {
    std::string buf(kBatchChunks * cs, '\0');
    std::vector<Record> records(kBatchChunks);
    size_t nrecords = 0;
    // One chunk's bytes: an all-zero chunk is only marked; any other is hashed and, if the
    // repository lacks it, prepared for the open pack.
    auto take = [&](uint64_t i, const char* p, uint32_t len, bool zero) -> Status {
      if (zero || IsAllZero(p, len)) {
        fc->digests[i] = Digest{};
        zero_chunks++;
        return Status::Ok();
      }
      Digest d = crypto.ChunkId(p, len);
      fc->digests[i] = d;
      LM_ASSIGN_OR_RETURN(bool fresh, PrepareChunk(d, std::string_view(p, len), &records[nrecords]));
      if (fresh) nrecords++;
      return Status::Ok();
    };
    // The batch's new chunks go to the pack together; its bytes count as done.
    auto end_batch = [&](Status s, uint64_t bytes) {
      if (s.ok() && nrecords) s = AppendRecords(records, nrecords);
      nrecords = 0;
      done_bytes += bytes;
      if (!s.ok()) {
        std::lock_guard lock(err_mu);
        if (first_error.ok()) first_error = s;
        failed = true;
      }
    };
    for (uint64_t b; !failed && (b = next.fetch_add(1)) < nbatches;) {
      uint64_t first = b * kBatchChunks;
      uint64_t last = std::min(nchunks, first + kBatchChunks);
      uint64_t off = first * cs;
      uint64_t end = std::min(fc->file_size, last * cs);
      Status s;
      // Chunks the caller knows are taken as they are; a batch with some is read chunk by
      // chunk, so that only the others are read at all.
      std::vector<std::optional<Digest>> given;
      if (known) {
        given.resize(last - first);
        bool any = false;
        for (uint64_t i = first; i < last; i++) any |= (given[i - first] = known(i)).has_value();
        if (!any) given.clear();
      }
      if (!given.empty()) {
        for (uint64_t i = first; s.ok() && i < last; i++) {
          uint64_t start = i * cs;
          if (start >= eof.load()) break;
          chunks++;
          if (const auto& d = given[i - first]) {
            fc->digests[i] = *d;
            if (d->IsZero()) zero_chunks++;
            continue;
          }
          char* p = buf.data() + (start - off);
          size_t got = 0;
          s = repo_.env()->PRead(fd, p, fc->ChunkLen(i), start, &got, path);
          if (s.ok() && got < fc->ChunkLen(i)) note_eof(start + got);
          if (s.ok() && got > 0) s = take(i, p, static_cast<uint32_t>(got), false);
        }
        end_batch(s, end - off);
        continue;
      }
      // A hole covering the whole batch needs no read: its chunks are all zero. ENXIO means
      // no data at or after `off`: a trailing hole, or the file now ends before `end`.
      off_t data = ::lseek(fd, static_cast<off_t>(off), SEEK_DATA);
      bool hole = (data < 0 && errno == ENXIO) || (data >= 0 && uint64_t(data) >= end);
      uint64_t avail = end - off;  // bytes of this batch that exist
      // Ask the disk now for the batch a worker takes after this round, so that reads
      // overlap hashing and compressing instead of stalling a core.
      if (uint64_t ahead = b + threads; ahead < nbatches && !known) {
        ::posix_fadvise(fd, static_cast<off_t>(ahead * kBatchChunks * cs),
                        static_cast<off_t>(kBatchChunks * cs), POSIX_FADV_WILLNEED);
      }
      if (hole) {
        struct stat st;
        if (::fstat(fd, &st) != 0) s = Status::FromErrno(errno, path);
        else if (uint64_t(st.st_size) < end) avail = uint64_t(st.st_size) > off ? st.st_size - off : 0;
      } else {
        size_t got = 0;
        s = repo_.env()->PRead(fd, buf.data(), end - off, off, &got, path);
        avail = got;
      }
      if (s.ok() && avail < end - off) note_eof(off + avail);
      for (uint64_t i = first; s.ok() && i < last; i++) {
        uint64_t start = i * cs;
        if (start >= off + avail) break;  // past where the file ended
        uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(fc->ChunkLen(i), off + avail - start));
        chunks++;
        s = take(i, buf.data() + (start - off), len, hole);
      }
      end_batch(s, end - off);
    }
  };
  std::vector<std::thread> pool;
  unsigned n = static_cast<unsigned>(std::min<uint64_t>(threads, std::max<uint64_t>(nbatches, 1)));
  for (unsigned t = 1; t < n; t++) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (first_error.ok() && eof < fc->file_size) {
    fc->file_size = eof;
    fc->digests.resize((fc->file_size + cs - 1) / cs);
  }
  return first_error;
}

// The objects of one backup copy, backups/<vm>/<id>/...: claims a free id with a write-once
// claim.json (who is writing, since when: what maintenance needs to tell a running backup
// from an abandoned one), writes the copy's objects, and commits it by writing backup.json.
// A failed backup deletes what it wrote; a killed one leaves objects no reader lists.
class CopyWriter {
 public:
  static Result<CopyWriter> Claim(const Repository& repo, BackupManifest& m, const std::string& host) {
    Backend& backend = repo.backend();
    CopyWriter w(repo);
    std::string base_id = BackupIdForTime(m.time_ns);
    nlohmann::json claim = {{"format", "livemount-backup-claim"}, {"host", host},
                            {"pid", ::getpid()}, {"time_ns", m.time_ns}};
    for (int attempt = 1; attempt <= 100; attempt++) {
      m.id = attempt == 1 ? base_id : base_id + "-" + std::to_string(attempt);
      w.prefix_ = BackupRef{m.vm, m.id}.Prefix();
      Status s = backend.Create(w.prefix_ + "claim.json", claim.dump() + "\n");
      if (s.code() == Code::kExists) continue;
      LM_RETURN_IF_ERROR(s);
      w.written_.push_back(w.prefix_ + "claim.json");
      // A copy made before claims existed has a backup.json and no claim.json.
      if (backend.Size(w.prefix_ + "backup.json").ok()) {
        w.Abandon();
        continue;
      }
      return w;
    }
    return Status::Exists(backend.Describe("backups/" + m.vm + "/" + base_id) +
                          ": no free backup id after 100 attempts");
  }
  CopyWriter(CopyWriter&& o) noexcept
      : repo_(o.repo_), backend_(o.backend_), prefix_(std::move(o.prefix_)), written_(std::move(o.written_)),
        committed_(o.committed_) {
    o.written_.clear();
  }
  ~CopyWriter() {
    if (!committed_) Abandon();
  }

  Status Write(const std::string& name, std::string_view data) {
    written_.push_back(prefix_ + name);
    return repo_.WriteObject(prefix_ + name, data);
  }

  // The commit point: backup.json, after everything it names is durable.
  Status Commit(const BackupManifest& m) {
    std::string json = EncodeManifest(m);
    LM_RETURN_IF_ERROR(Write("backup.json.sha256", Digest::Of(json).Hex() + "\n"));
    LM_RETURN_IF_ERROR(Write("backup.json", json));
    committed_ = true;
    return Status::Ok();
  }

 private:
  explicit CopyWriter(const Repository& repo) : repo_(repo), backend_(repo.backend()) {}
  void Abandon() {
    for (auto it = written_.rbegin(); it != written_.rend(); ++it) (void)backend_.Delete(*it);
    written_.clear();
  }

  const Repository& repo_;
  Backend& backend_;
  std::string prefix_;
  std::vector<std::string> written_;  // to delete if the backup fails
  bool committed_ = false;
};

}  // namespace

Result<BackupSummary> RunBackup(Repository& repo, const BackupOptions& o) {
  LM_RETURN_IF_ERROR(o.validate());
  std::string profile = o.profile_json;
  if (profile.empty() && !o.profile_path.empty()) {
    LM_ASSIGN_OR_RETURN(profile, repo.env()->ReadFile(o.profile_path));
  }
  LM_ASSIGN_OR_RETURN(auto lock, repo.backend().Lock(LockMode::kShared));
  LM_RETURN_IF_ERROR(repo.Refresh());  // dedup against backups finished since Open

  auto start = std::chrono::steady_clock::now();
  BackupSummary out;
  BackupManifest& m = out.manifest;
  m.vm = o.vm;
  m.time_ns = repo.env()->NowMicros() * 1000;
  char* abs = ::realpath(o.vmdir.c_str(), nullptr);
  m.source = abs ? abs : o.vmdir;
  free(abs);
  m.host = HostName();
  m.chunk_size = repo.chunk_size();
  LM_ASSIGN_OR_RETURN(ScanResult scan, ScanVmDirectory(o.vmdir, ScanOptions{o.excludes, o.skip_paths}));
  out.skipped = scan.special;
  out.excluded = scan.excluded;
  out.warnings = scan.warnings;
  if (o.after_scan_for_test) o.after_scan_for_test();

  // The copy's objects are written under its final name from the start, behind a claim;
  // it exists for readers only once backup.json is written, last.
  LM_ASSIGN_OR_RETURN(CopyWriter copy, CopyWriter::Claim(repo, m, HostName()));

  BackupProgress progress;
  for (auto& f : scan.files)
    if (f.type == FileType::kFile) progress.total_bytes += f.size;
  unsigned threads = o.threads ? o.threads : std::max(2u, std::thread::hardware_concurrency());
  BackupWriter writer(repo, o);

  size_t file_no = 0;
  for (size_t index = 0; index < scan.files.size(); index++) {
    FileEntry f = scan.files[index];
    if (f.type != FileType::kFile) {
      m.files.push_back(std::move(f));
      continue;
    }
    std::string full = JoinPath(o.vmdir, f.path);
    auto opened = OpenScanned(scan, index);
    if (!opened.ok()) {  // vanished, unreadable or swapped: skipped, never followed
      out.warnings.push_back(opened.status().message());
      continue;
    }
    UniqueFd fd = std::move(*opened);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, full);
    // Larger kernel read-ahead; none when known chunks are skipped (it would read them).
    ::posix_fadvise(fd.get(), 0, 0, o.known_chunk ? POSIX_FADV_RANDOM : POSIX_FADV_SEQUENTIAL);
    if (Status xs = ReadXattrs(fd.get(), full, &f.xattrs); !xs.ok()) out.warnings.push_back(xs.message());
    FileChunks fc;
    fc.file_size = st.st_size;  // the size when opened; a file that grows is read to here
    fc.chunk_size = m.chunk_size;
    fc.digests.resize((fc.file_size + fc.chunk_size - 1) / fc.chunk_size);

    progress.current_file = f.path;
    Status s;
    std::atomic<bool> done{false};
    std::thread chunker([&] {
      std::function<std::optional<Digest>(uint64_t)> known;
      if (o.known_chunk) known = [&o, &f](uint64_t i) { return o.known_chunk(f.path, i); };
      s = writer.ChunkFile(fd.get(), full, &fc, threads, known);
      done = true;
    });
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (o.progress) {
        progress.done_bytes = writer.done_bytes;
        progress.new_stored_bytes = writer.new_stored;
        o.progress(progress);
      }
    }
    chunker.join();
    LM_RETURN_IF_ERROR(s);
    // What the copy holds of a file that changed while it was read: the bytes actually
    // read, up to where it ended (never past it), flagged in the manifest and warned about.
    struct stat after;
    if (::fstat(fd.get(), &after) != 0) return Status::FromErrno(errno, full);
    if (fc.file_size < uint64_t(st.st_size)) {
      f.changed = true;
      out.warnings.push_back(full + ": shrank from " + std::to_string(st.st_size) + " to " +
                             std::to_string(fc.file_size) + " bytes while being read; the copy holds the " +
                             std::to_string(fc.file_size) + " bytes read");
    } else if (after.st_size != st.st_size || after.st_mtim.tv_sec != st.st_mtim.tv_sec ||
               after.st_mtim.tv_nsec != st.st_mtim.tv_nsec) {
      f.changed = true;
      out.warnings.push_back(full + (after.st_size > st.st_size ? ": grew" : ": changed") +
                             " while being read; the copy holds the first " + std::to_string(fc.file_size) +
                             " bytes as read");
    }
    f.size = fc.file_size;
    m.logical_bytes += f.size;
    f.fidx = "files/" + std::to_string(file_no++) + ".fidx";
    LM_RETURN_IF_ERROR(copy.Write(f.fidx, EncodeFidx(fc)));
    m.files.push_back(std::move(f));
  }
  // A lock that may have been taken over (an object store unreachable for minutes) means a
  // prune may have removed packs this copy needs: nothing is committed then.
  LM_RETURN_IF_ERROR(lock->Check());
  LM_RETURN_IF_ERROR(writer.Finish());

  m.new_raw_bytes = writer.new_raw;
  m.stored_bytes = writer.new_stored;
  m.chunks = writer.chunks;
  m.zero_chunks = writer.zero_chunks;
  m.new_chunks = writer.new_chunks;
  if (!profile.empty()) {
    LM_RETURN_IF_ERROR(copy.Write("profile.json", profile));
    m.has_profile = true;
  }
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (o.before_commit) LM_RETURN_IF_ERROR(o.before_commit());
  LM_RETURN_IF_ERROR(lock->Check());
  LM_RETURN_IF_ERROR(copy.Commit(m));
  if (o.progress) {
    progress.done_bytes = progress.total_bytes;
    progress.new_stored_bytes = writer.new_stored;
    o.progress(progress);
  }
  return out;
}

}  // namespace lm

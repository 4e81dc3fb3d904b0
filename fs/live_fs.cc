#include "fs/live_fs.h"

#include <fcntl.h>

#include <chrono>
#include <ctime>

#include "base/state_layout.h"

#include "base/log.h"

namespace lm {

Status LiveFsOptions::validate() const {
  if (readahead_chunks > 1024) return Status::Invalid("read-ahead above 1024 chunks");
  return Status::Ok();
}

namespace {
int64_t NowUnixSeconds() { return static_cast<int64_t>(std::time(nullptr)); }
}  // namespace

LiveFs::LiveFs(Repository& repo, ChunkSource& source, LiveFsOptions options)
    : repo_(repo), source_(source), options_(options), ns_(repo, options.overlays, options.inodes) {
  if (options_.views) {
    ns_.SetViewPlanner([this](const std::shared_ptr<BackupTree>& t) { return PlanViews(t); });
  }
  if (!options_.record_reads.empty()) {
    record_ = std::fopen(options_.record_reads.c_str(), "we");
    if (!record_) LogError("cannot open " + options_.record_reads + " to record reads");
  }
}

LiveFs::~LiveFs() {
  if (record_) std::fclose(record_);
}

Result<std::unique_ptr<OpenFile>> LiveFs::Open(Ino ino) {
  LM_ASSIGN_OR_RETURN(auto node, ns_.Get(ino));
  if (node->kind != NodeKind::kFile) return Status::Invalid("not a regular file");
  auto f = std::make_unique<OpenFile>();
  f->node = node;
  if (node->file_index >= 0) {
    LM_ASSIGN_OR_RETURN(f->chunks, ns_.Chunks(*node));
  } else if (node->view_index >= 0) {
    f->view = node->backup->views.at(node->view_index);
  }
  f->what = node->backup->ref.Name() + ":" + node->rel;
  node->backup->last_used_unix = NowUnixSeconds();
  ns_.Opened(*node);
  if (node->backup->open_files++ == 0 && options_.on_first_open) options_.on_first_open(node->backup->ref);
  counters_.opens++;
  return f;
}

void LiveFs::Release(std::unique_ptr<OpenFile> f) {
  Node& n = *f->node;
  bool dirty = ns_.Closed(n);
  if (--n.backup->open_files == 0) {  // e.g. the VM powered off
    FlushTrace(*n.backup);
    if (options_.on_last_close) options_.on_last_close(n.backup->ref);
  }
  // A clean close loses nothing: what was written is made durable as by fsync.
  if (dirty) {
    Status s = Fsync(n);
    if (!s.ok()) LogError("close " + f->what + ": " + s.message());
  }
  ns_.Released(n);
}

void LiveFs::RecordTouch(Node& n, uint64_t off, size_t len) {
  if (n.backup) RecordTouchAt(n.backup, n.file_index, off, len);
}

void LiveFs::RecordTouchAt(const std::shared_ptr<BackupTree>& tree, int file_index, uint64_t off, size_t len) {
  if (options_.state_dir.empty() || file_index < 0 || len == 0) return;
  BackupTree& t = *tree;
  uint64_t cs = t.manifest.chunk_size;
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  bool first = false;
  {
    std::lock_guard lock(t.trace_mu);
    if (t.trace_start_ms < 0) {
      t.trace_start_ms = now;
      t.trace.vm = t.ref.vm;
      t.trace.backup = t.ref.id;
      t.trace.chunk_size = static_cast<uint32_t>(cs);
      t.trace.started_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
      first = true;
    }
    for (uint64_t c = off / cs; c <= (off + len - 1) / cs; c++) {
      if (t.touched.insert(uint64_t(file_index) << 40 | c).second) {
        t.trace.touches.push_back({t.manifest.files[file_index].path, c,
                                   static_cast<uint64_t>(now - t.trace_start_ms)});
        t.trace_dirty = true;
      }
    }
  }
  if (first) {
    std::lock_guard lock(traced_mu_);
    traced_.push_back(tree);
  }
}

void LiveFs::FlushTrace(BackupTree& t) {
  std::string text, path;
  {
    std::lock_guard lock(t.trace_mu);
    if (!t.trace_dirty) return;
    text = EncodeTrace(t.trace);
    auto dir = StateLayout(options_.state_dir).TraceDir(t.ref.vm);  // the ref came from the repository
    if (!dir.ok()) return;
    path = JoinPath(*dir, t.ref.id + "-" + std::to_string(t.trace.started_ns) + ".json");
    t.trace_dirty = false;
  }
  Status s = MkdirAll(DirName(path));
  if (s.ok()) s = repo_.env()->WriteFileAtomic(path, text);
  if (!s.ok()) LogWarn("cannot write the access trace: " + s.message());
}

void LiveFs::FlushTraces() {
  std::vector<std::shared_ptr<BackupTree>> trees;
  {
    std::lock_guard lock(traced_mu_);
    trees = traced_;
  }
  for (auto& t : trees) FlushTrace(*t);
}

RangeReader LiveFs::BaseOf(const std::shared_ptr<Node>& n, const std::string& what) {
  if (n->view_index >= 0) {
    std::shared_ptr<ViewReader> view = n->backup->views.at(n->view_index);
    return [view](uint64_t off, size_t len, char* out) { return view->Read(off, len, out); };
  }
  return [this, n, what](uint64_t off, size_t len, char* out) -> Status {
    RecordTouch(*n, off, len);
    LM_ASSIGN_OR_RETURN(auto chunks, ns_.Chunks(*n));
    return source_.Read(*chunks, what, off, len, out);
  };
}

Status LiveFs::Read(OpenFile& f, uint64_t off, size_t size, std::string* out) {
  out->resize(size);
  size_t got = 0;
  Status s = ReadInto(f, off, size, out->data(), &got);
  out->resize(s.ok() ? got : 0);
  return s;
}

Status LiveFs::ReadInto(OpenFile& f, uint64_t off, size_t size, char* out, size_t* got) {
  *got = 0;
  ScopedLatency timed(counters_.read_latency);
  counters_.read_requests++;
  BackupTree& copy = *f.node->backup;
  copy.read_requests.fetch_add(1, std::memory_order_relaxed);
  copy.last_used_unix.store(NowUnixSeconds(), std::memory_order_relaxed);
  if (record_) {
    std::lock_guard lock(record_mu_);
    std::fprintf(record_, "%s %llu %zu\n", f.what.c_str(), static_cast<unsigned long long>(off), size);
  }
  std::shared_ptr<OverlayFile> data = ns_.DataOf(*f.node);
  // Written files read through their overlay; the others straight from the backup (a new
  // file nobody wrote to yet has neither, and is empty).
  uint64_t fsize = data ? data->size() : f.chunks ? f.chunks->file_size : f.view ? f.view->size() : 0;
  size_t len = off >= fsize ? 0 : static_cast<size_t>(std::min<uint64_t>(size, fsize - off));
  if (len == 0) return Status::Ok();
  Status s;
  if (data) {
    s = data->Read(off, len, out, BaseOf(f.node, f.what));
  } else if (f.view) {
    s = f.view->Read(off, len, out);
  } else {
    RecordTouch(*f.node, off, len);
    MaybeReadAhead(f, off, len);
    s = source_.Read(*f.chunks, f.what, off, len, out);
  }
  if (!s.ok()) {
    counters_.read_errors++;
    return s;
  }
  counters_.read_bytes += len;
  copy.read_bytes.fetch_add(len, std::memory_order_relaxed);
  *got = len;
  return Status::Ok();
}

Status LiveFs::Write(OpenFile& f, uint64_t off, const char* buf, size_t len) {
  LM_ASSIGN_OR_RETURN(auto data, ns_.EnsureData(*f.node));
  LM_RETURN_IF_ERROR(data->Write(off, buf, len, BaseOf(f.node, f.what)));
  ns_.MarkModified(*f.node, data->size());
  counters_.write_requests++;
  counters_.write_bytes += len;
  BackupTree& copy = *f.node->backup;
  copy.write_requests.fetch_add(1, std::memory_order_relaxed);
  copy.write_bytes.fetch_add(len, std::memory_order_relaxed);
  copy.changes++;
  copy.last_used_unix.store(NowUnixSeconds(), std::memory_order_relaxed);
  return Status::Ok();
}

Status LiveFs::Fallocate(OpenFile& f, int mode, uint64_t off, uint64_t len) {
  constexpr int kKnown = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
  if (mode & ~kKnown) return Status::Unsupported("fallocate mode " + std::to_string(mode));
  if (len == 0) return Status::Invalid("fallocate of 0 bytes");
  if (f.node->kind != NodeKind::kFile) return Status::Unsupported("fallocate of a non-file");
  LM_ASSIGN_OR_RETURN(auto data, ns_.EnsureData(*f.node));
  bool zero = mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE);
  if (zero) LM_RETURN_IF_ERROR(data->Zero(off, len, BaseOf(f.node, f.what)));
  uint64_t old_size = data->size();
  bool grows = !(mode & FALLOC_FL_KEEP_SIZE) && off + len > old_size;
  if (grows) LM_RETURN_IF_ERROR(data->Truncate(off + len));  // the new bytes read as zeros
  if (zero || grows) {
    ns_.MarkModified(*f.node, data->size());
    f.node->backup->changes++;
  }
  return Status::Ok();
}

Status LiveFs::Fsync(Node& n) {
  std::shared_ptr<OverlayFile> data = ns_.DataOf(n);
  if (data) LM_RETURN_IF_ERROR(data->Sync());
  return ns_.Persist(n, true);
}

Status LiveFs::SetAttr(Ino ino, const AttrChange& c) {
  const struct stat& a = c.values;
  LM_ASSIGN_OR_RETURN(auto n, ns_.Get(ino));
  if (!ns_.writable() || !n->backup || n->kind == NodeKind::kBackupDir) {
    return Status::Of(Code::kReadOnly, "only files in backup directories can change");
  }
  if (c.size) {
    if (n->kind != NodeKind::kFile) return Status::Of(Code::kIsDir, n->name);
    LM_ASSIGN_OR_RETURN(auto data, ns_.EnsureData(*n));
    LM_RETURN_IF_ERROR(data->Truncate(static_cast<uint64_t>(a.st_size)));
    // truncate(2) needs no open handle, so no close will sync it: do it now.
    LM_RETURN_IF_ERROR(data->Sync());
  }
  struct timespec now = RealtimeNow();
  ns_.UpdateAttr(*n, [&](struct stat& st) {
    if (c.mode) st.st_mode = (st.st_mode & S_IFMT) | (a.st_mode & 07777);
    if (c.uid) st.st_uid = a.st_uid;
    if (c.gid) st.st_gid = a.st_gid;
    if (c.size) {
      st.st_size = a.st_size;
      st.st_blocks = (st.st_size + 511) / 512;
      st.st_mtim = now;
    }
    if (c.atime) st.st_atim = c.atime_now ? now : a.st_atim;
    if (c.mtime) st.st_mtim = c.mtime_now ? now : a.st_mtim;
    st.st_ctim = now;
  });
  n->backup->changes++;
  return ns_.Persist(*n, true);
}

void LiveFs::MaybeReadAhead(OpenFile& f, uint64_t off, size_t len) {
  if (options_.readahead_chunks == 0) return;
  const FileChunks& fc = *f.chunks;
  const uint64_t cs = fc.chunk_size;
  std::vector<Digest> queue;
  {
    std::lock_guard lock(f.mu);
    // The kernel issues read-ahead requests in parallel, so "sequential" allows some slack.
    bool sequential = off + 4 * cs >= f.next_off && off <= f.next_off + 4 * cs && off > 0;
    f.next_off = std::max(f.next_off, off + len);
    if (!sequential) {
      f.ra_window = 0;
      return;
    }
    f.ra_window = f.ra_window ? std::min(f.ra_window * 2, options_.readahead_chunks)
                              : std::min(4u, options_.readahead_chunks);
    uint64_t last = (off + len - 1) / cs;
    uint64_t from = std::max(f.ra_until, last + 1);
    uint64_t to = std::min<uint64_t>(fc.digests.size(), last + 1 + f.ra_window);
    for (uint64_t i = from; i < to; i++) queue.push_back(fc.digests[i]);
    f.ra_until = std::max(f.ra_until, to);
  }
  if (!queue.empty()) source_.Prefetch(queue, f.what);
}

}  // namespace lm

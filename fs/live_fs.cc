#include "fs/live_fs.h"

#include <ctime>

#include "store/log.h"

namespace lm {

Status LiveFsOptions::validate() const {
  if (readahead_chunks > 1024) return Status::Invalid("read-ahead above 1024 chunks");
  return Status::Ok();
}

LiveFs::LiveFs(Repository& repo, ChunkSource& source, LiveFsOptions options)
    : repo_(repo), source_(source), options_(options), ns_(repo, options.overlays) {}

Result<std::unique_ptr<OpenFile>> LiveFs::Open(Ino ino) {
  LM_ASSIGN_OR_RETURN(auto node, ns_.Get(ino));
  if (node->kind != NodeKind::kFile) return Status::Invalid("not a regular file");
  auto f = std::make_unique<OpenFile>();
  f->node = node;
  if (node->file_index >= 0) {
    LM_ASSIGN_OR_RETURN(f->chunks, ns_.Chunks(*node));
  }
  f->what = node->backup->ref.Name() + ":" + node->rel;
  {
    std::unique_lock lock(ns_.mutex());
    node->open_count++;
  }
  node->backup->open_files++;
  counters_.opens++;
  return f;
}

void LiveFs::Release(std::unique_ptr<OpenFile> f) {
  Node& n = *f->node;
  bool dirty;
  {
    std::unique_lock lock(ns_.mutex());
    n.open_count--;
    dirty = n.meta_dirty;
  }
  n.backup->open_files--;
  // A clean close loses nothing: what was written is made durable as by fsync.
  if (dirty) {
    Status s = Fsync(n);
    if (!s.ok()) LogError("close " + f->what + ": " + s.message());
  }
  ns_.Released(n);
}

BaseReader LiveFs::BaseOf(const std::shared_ptr<Node>& n, const std::string& what) {
  return [this, n, what](uint64_t off, size_t len, char* out) -> Status {
    LM_ASSIGN_OR_RETURN(auto chunks, ns_.Chunks(*n));
    return source_.Read(*chunks, what, off, len, out);
  };
}

Status LiveFs::Read(OpenFile& f, uint64_t off, size_t size, std::string* out) {
  counters_.read_requests++;
  std::shared_ptr<OverlayFile> data;
  {
    std::shared_lock lock(ns_.mutex());
    data = f.node->data;
  }
  if (data) {
    uint64_t fsize = data->size();
    size_t len = off >= fsize ? 0 : static_cast<size_t>(std::min<uint64_t>(size, fsize - off));
    out->resize(len);
    Status s = len ? data->Read(off, len, out->data(), BaseOf(f.node, f.what)) : Status::Ok();
    if (!s.ok()) {
      counters_.read_errors++;
      return s;
    }
    counters_.read_bytes += len;
    return Status::Ok();
  }
  if (!f.chunks) {  // a new file nobody wrote to yet
    out->clear();
    return Status::Ok();
  }
  const FileChunks& fc = *f.chunks;
  if (off >= fc.file_size) {
    out->clear();
    return Status::Ok();
  }
  size_t len = static_cast<size_t>(std::min<uint64_t>(size, fc.file_size - off));
  out->resize(len);
  MaybeReadAhead(f, off, len);
  Status s = source_.Read(fc, f.what, off, len, out->data());
  if (!s.ok()) {
    counters_.read_errors++;
    return s;
  }
  counters_.read_bytes += len;
  return Status::Ok();
}

Status LiveFs::Write(OpenFile& f, uint64_t off, const char* buf, size_t len) {
  LM_ASSIGN_OR_RETURN(auto data, ns_.EnsureData(*f.node));
  LM_RETURN_IF_ERROR(data->Write(off, buf, len, BaseOf(f.node, f.what)));
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  std::unique_lock lock(ns_.mutex());
  struct stat& st = f.node->attr;
  st.st_size = static_cast<off_t>(data->size());
  st.st_blocks = (st.st_size + 511) / 512;
  st.st_mtim = st.st_ctim = now;
  f.node->meta_dirty = true;
  counters_.write_requests++;
  counters_.write_bytes += len;
  return Status::Ok();
}

Status LiveFs::Fsync(Node& n) {
  std::shared_ptr<OverlayFile> data;
  {
    std::shared_lock lock(ns_.mutex());
    data = n.data;
  }
  if (data) LM_RETURN_IF_ERROR(data->Sync());
  return ns_.Persist(n, true);
}

Status LiveFs::SetAttr(Ino ino, const struct stat& a, int, bool mode, bool uid, bool gid,
                       bool size, bool atime, bool atime_now, bool mtime, bool mtime_now) {
  LM_ASSIGN_OR_RETURN(auto n, ns_.Get(ino));
  if (!ns_.writable() || !n->backup || n->kind == NodeKind::kBackupDir) {
    return Status::Of(Code::kReadOnly, "only files in backup directories can change");
  }
  if (size) {
    if (n->kind != NodeKind::kFile) return Status::Of(Code::kIsDir, n->name);
    LM_ASSIGN_OR_RETURN(auto data, ns_.EnsureData(*n));
    LM_RETURN_IF_ERROR(data->Truncate(static_cast<uint64_t>(a.st_size)));
    // truncate(2) needs no open handle, so no close will sync it: do it now.
    LM_RETURN_IF_ERROR(data->Sync());
  }
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  {
    std::unique_lock lock(ns_.mutex());
    struct stat& st = n->attr;
    if (mode) st.st_mode = (st.st_mode & S_IFMT) | (a.st_mode & 07777);
    if (uid) st.st_uid = a.st_uid;
    if (gid) st.st_gid = a.st_gid;
    if (size) {
      st.st_size = a.st_size;
      st.st_blocks = (st.st_size + 511) / 512;
      st.st_mtim = now;
    }
    if (atime) st.st_atim = atime_now ? now : a.st_atim;
    if (mtime) st.st_mtim = mtime_now ? now : a.st_mtim;
    st.st_ctim = now;
  }
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

#include "fs/live_fs.h"

namespace lm {

Status LiveFsOptions::validate() const {
  if (readahead_chunks > 1024) return Status::Invalid("read-ahead above 1024 chunks");
  return Status::Ok();
}

LiveFs::LiveFs(Repository& repo, ChunkSource& source, LiveFsOptions options)
    : repo_(repo), source_(source), options_(options), ns_(repo) {}

Result<std::unique_ptr<OpenFile>> LiveFs::Open(Ino ino) {
  LM_ASSIGN_OR_RETURN(auto node, ns_.Get(ino));
  if (node->kind != NodeKind::kFile) return Status::Invalid("not a regular file");
  LM_ASSIGN_OR_RETURN(auto chunks, ns_.Chunks(*node));
  auto f = std::make_unique<OpenFile>();
  f->node = node;
  f->chunks = std::move(chunks);
  f->what = node->backup->ref.Name() + ":" + node->backup->manifest.files[node->file_index].path;
  counters_.opens++;
  return f;
}

Status LiveFs::Read(OpenFile& f, uint64_t off, size_t size, std::string* out) {
  const FileChunks& fc = *f.chunks;
  counters_.read_requests++;
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

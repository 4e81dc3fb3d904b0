// Reading a backed-up file by byte range: the one offset-to-chunk loop of the project.
// ForEachChunkSlice cuts a range of a file into the pieces that lie in one chunk each;
// the read-cache's ChunkSource and FileChunkReader both walk a file with it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "base/range_reader.h"
#include "store/chunk_reader.h"
#include "store/manifest.h"

namespace lm {

// One piece of a read: bytes [in_chunk, in_chunk + n) of chunk `index`, which land at
// out_offset in the caller's buffer.
struct ChunkSlice {
  size_t index = 0;
  const Digest* digest = nullptr;  // all-zero: the chunk is zeros, not stored
  uint32_t in_chunk = 0;
  uint32_t n = 0;
  size_t out_offset = 0;
};

// Calls fn(slice) for [off, off+len) in order, stopping at the first error. The range
// must lie within the file (callers clip it); anything else is Corrupt.
template <typename Fn>
Status ForEachChunkSlice(const FileChunks& fc, uint64_t off, size_t len, Fn&& fn) {
  if (off > fc.file_size || len > fc.file_size - off) {
    return Status::Corrupt("read past the end of the file");
  }
  const uint64_t cs = fc.chunk_size;
  for (size_t done = 0; done < len;) {
    uint64_t pos = off + done;
    ChunkSlice s;
    s.index = pos / cs;
    s.in_chunk = static_cast<uint32_t>(pos % cs);
    s.n = static_cast<uint32_t>(std::min<uint64_t>(len - done, fc.ChunkLen(s.index) - s.in_chunk));
    s.digest = &fc.digests[s.index];
    s.out_offset = done;
    LM_RETURN_IF_ERROR(fn(s));
    done += s.n;
  }
  return Status::Ok();
}

// A backed-up file read through any ChunkReader (the repository, or the read-cache's
// ChunkSource), remembering recent chunks: format and filesystem metadata are read in many
// small pieces. Not thread-safe; cheap to make one per reader.
class FileChunkReader {
 public:
  FileChunkReader(ChunkReader& chunks, FileChunks fc) : chunks_(chunks), fc_(std::move(fc)) {}
  uint64_t size() const { return fc_.file_size; }
  Status Read(uint64_t off, size_t len, char* out);
  // A RangeReader over this reader (which must outlive it).
  RangeReader AsRangeReader() {
    return [this](uint64_t off, size_t len, char* out) { return Read(off, len, out); };
  }

 private:
  ChunkReader& chunks_;
  FileChunks fc_;
  std::unordered_map<Digest, std::string, DigestHash> memo_;
};

}  // namespace lm

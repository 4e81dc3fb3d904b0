#include "store/file_reader.h"

#include <cstring>

namespace lm {

namespace {
constexpr size_t kMemoChunks = 256;
}

Status FileChunkReader::Read(uint64_t off, size_t len, char* out) {
  return ForEachChunkSlice(fc_, off, len, [&](const ChunkSlice& s) {
    if (s.digest->IsZero()) {
      std::memset(out + s.out_offset, 0, s.n);
      return Status::Ok();
    }
    auto it = memo_.find(*s.digest);
    if (it == memo_.end()) {
      if (memo_.size() >= kMemoChunks) memo_.clear();
      std::string raw;
      LM_RETURN_IF_ERROR(chunks_.ReadChunk(*s.digest, &raw));
      if (raw.size() < size_t{s.in_chunk} + s.n) {
        return Status::Corrupt("chunk " + s.digest->ShortHex() + " is shorter than its file index says");
      }
      it = memo_.emplace(*s.digest, std::move(raw)).first;
    }
    std::memcpy(out + s.out_offset, it->second.data() + s.in_chunk, s.n);
    return Status::Ok();
  });
}

}  // namespace lm

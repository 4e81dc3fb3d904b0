// Reads a backed-up file straight from the repository, remembering recent chunks (format
// and filesystem metadata are read in many small pieces).
#pragma once

#include <cstring>
#include <unordered_map>

#include "store/repository.h"

namespace lm {

class RepoFileReader {
 public:
  RepoFileReader(Repository& repo, FileChunks fc) : repo_(repo), fc_(std::move(fc)) {}
  uint64_t size() const { return fc_.file_size; }
  Status Read(uint64_t off, size_t len, char* out) {
    if (off + len > fc_.file_size) return Status::Corrupt("read past the end of the file");
    for (size_t done = 0; done < len;) {
      uint64_t pos = off + done;
      size_t i = pos / fc_.chunk_size;
      uint32_t in = static_cast<uint32_t>(pos % fc_.chunk_size);
      size_t n = std::min<uint64_t>(len - done, fc_.ChunkLen(i) - in);
      const Digest& d = fc_.digests[i];
      if (d.IsZero()) {
        std::memset(out + done, 0, n);
      } else {
        auto it = memo_.find(d);
        if (it == memo_.end()) {
          if (memo_.size() > 256) memo_.clear();
          std::string raw;
          LM_RETURN_IF_ERROR(repo_.ReadChunk(d, &raw));
          it = memo_.emplace(d, std::move(raw)).first;
        }
        std::memcpy(out + done, it->second.data() + in, n);
      }
      done += n;
    }
    return Status::Ok();
  }

 private:
  Repository& repo_;
  FileChunks fc_;
  std::unordered_map<Digest, std::string, DigestHash> memo_;
};

}  // namespace lm

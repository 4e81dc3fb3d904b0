// ChunkReader: where chunks come from, by digest. The repository is one (it reads packs
// through its backend); the read-cache's ChunkSource is another (cache first, then its own
// ChunkReader). Readers of backed-up files (FileChunkReader) take either.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "store/digest.h"

namespace lm {

class ChunkReader {
 public:
  virtual ~ChunkReader() = default;
  // The chunk's raw bytes; a damaged chunk is Corrupt, never zeros or other bytes.
  virtual Status ReadChunk(const Digest& d, std::string* raw) = 0;
  // Several chunks into (*raws)[i]; a reader that can fetch neighbours with one request
  // (the repository) overrides this. Any error fails the whole call.
  virtual Status ReadChunks(const std::vector<Digest>& digests, std::vector<std::string>* raws) {
    raws->assign(digests.size(), std::string());
    for (size_t i = 0; i < digests.size(); i++) LM_RETURN_IF_ERROR(ReadChunk(digests[i], &(*raws)[i]));
    return Status::Ok();
  }
  virtual uint32_t chunk_size() const = 0;
};

}  // namespace lm

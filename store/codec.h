// Chunk compression. A chunk is stored with zstd when that saves at least 1/32 of its size,
// otherwise raw (random data, already-compressed guest blocks).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace lm {

enum class Codec : uint8_t { kNone = 0, kZstd = 1 };

// Compresses `raw` into *out; returns the codec chosen.
Codec CompressChunk(std::string_view raw, int level, std::string* out);
// Decodes `stored` into exactly raw_len bytes at out. `what` names the chunk in errors.
Status DecompressChunk(Codec codec, std::string_view stored, uint32_t raw_len, char* out,
                       const std::string& what);

}  // namespace lm

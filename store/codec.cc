#include "store/codec.h"

#include <zstd.h>

#include <cstring>

namespace lm {

namespace {
// One context per thread: creating a ZSTD_CCtx costs far more than compressing 128 KiB.
ZSTD_CCtx* ThreadCCtx() {
  thread_local struct Holder {
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ~Holder() { ZSTD_freeCCtx(c); }
  } h;
  return h.c;
}
ZSTD_DCtx* ThreadDCtx() {
  thread_local struct Holder {
    ZSTD_DCtx* d = ZSTD_createDCtx();
    ~Holder() { ZSTD_freeDCtx(d); }
  } h;
  return h.d;
}
}  // namespace

// True when three 4 KiB samples of `raw` do not compress at the fastest level: random or
// already-compressed data, which then skips a full compression attempt (as btrfs does).
static bool LooksIncompressible(std::string_view raw) {
  constexpr size_t kSample = 4096;
  if (raw.size() < 8 * kSample) return false;
  char out[ZSTD_COMPRESSBOUND(kSample)];
  size_t at[3] = {0, raw.size() / 2, raw.size() - kSample};
  for (size_t off : at) {
    size_t n = ZSTD_compressCCtx(ThreadCCtx(), out, sizeof out, raw.data() + off, kSample, 1);
    if (ZSTD_isError(n) || n < kSample - kSample / 16) return false;
  }
  return true;
}

Codec CompressChunk(std::string_view raw, int level, std::string* out) {
  if (level > 0 && !LooksIncompressible(raw)) {
    out->resize(ZSTD_compressBound(raw.size()));
    size_t n = ZSTD_compressCCtx(ThreadCCtx(), out->data(), out->size(), raw.data(), raw.size(),
                                 level);
    if (!ZSTD_isError(n) && n < raw.size() - raw.size() / 32) {
      out->resize(n);
      return Codec::kZstd;
    }
  }
  out->assign(raw.data(), raw.size());
  return Codec::kNone;
}

Status DecompressChunk(Codec codec, std::string_view stored, uint32_t raw_len, char* out,
                       const std::string& what) {
  switch (codec) {
    case Codec::kNone:
      if (stored.size() != raw_len) {
        return Status::Corrupt(what + ": stored length " + std::to_string(stored.size()) +
                               " differs from raw length " + std::to_string(raw_len));
      }
      std::memcpy(out, stored.data(), raw_len);
      return Status::Ok();
    case Codec::kZstd: {
      size_t n = ZSTD_decompressDCtx(ThreadDCtx(), out, raw_len, stored.data(), stored.size());
      if (ZSTD_isError(n)) {
        return Status::Corrupt(what + ": zstd: " + ZSTD_getErrorName(n));
      }
      if (n != raw_len) {
        return Status::Corrupt(what + ": decompressed to " + std::to_string(n) +
                               " bytes, expected " + std::to_string(raw_len));
      }
      return Status::Ok();
    }
  }
  return Status::Corrupt(what + ": unknown codec " + std::to_string(static_cast<int>(codec)));
}

}  // namespace lm

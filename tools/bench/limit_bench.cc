// lm_limit_bench: the machine's own ceiling for a backup's compute (issue 15, "Speed at the
// limit"), measured on the image being backed up.
//
//   lm_limit_bench backup FILE [--threads N] [--level L] [--segment-mib S] [--chunk-kib C]
//       reads FILE into memory (not timed), then, one segment of S MiB (default 64) at a
//       time, hashes (SHA-256) and compresses (the backup's own CompressChunk, zstd level L,
//       default 1) every chunk of C KiB (default 128) on N threads (default: every core),
//       and prints one JSON line per segment: its offset, raw bytes, the bytes a pack would
//       hold (records with their headers; all-zero chunks are not stored) and the seconds
//       the cores took. No disk, no index, no copies beyond what compression needs: what
//       the CPU alone allows.
//   lm_limit_bench read FILE [--level L] [--chunk-kib C]
//       compresses every chunk of FILE (not timed), then on one thread decompresses each
//       and checks its SHA-256, as a cold read through the mount must before it answers,
//       and prints one JSON line: the chunks and the microseconds per chunk. What the CPU
//       allows a cold random read at queue depth 1, with a disk that answered at once.
//
// tools/bench/store_bench.sh adds to each segment's CPU time the time the disk needs to read
// its raw bytes and to write its stored bytes durably (rates measured in the same run) and
// takes the larger of the two per segment: the backup's limit when the disk and the cores
// work at the same time, on an image whose parts are not alike (random parts make a
// backup wait on the disk, text parts on the cores).
#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include "store/codec.h"
#include "store/digest.h"
#include "store/pack.h"

using namespace lm;

namespace {

// The read mode: decompress and check every stored (non-zero) chunk, one at a time.
int ReadCeiling(const std::string& data, uint64_t chunk, int level) {
  struct Stored {
    Codec codec;
    uint32_t raw_len;
    Digest digest;
    std::string bytes;
  };
  std::vector<Stored> stored;
  for (uint64_t off = 0; off < data.size(); off += chunk) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(chunk, data.size() - off));
    const char* p = data.data() + off;
    if (IsAllZero(p, len)) continue;
    Stored s{Codec::kNone, static_cast<uint32_t>(len), Digest::Of(p, len), {}};
    s.codec = CompressChunk(std::string_view(p, len), level, &s.bytes);
    stored.push_back(std::move(s));
  }
  std::string raw(chunk, '\0');
  auto t0 = std::chrono::steady_clock::now();
  for (const Stored& s : stored) {
    if (!DecompressChunk(s.codec, s.bytes, s.raw_len, raw.data(), "chunk").ok() ||
        Digest::Of(raw.data(), s.raw_len) != s.digest) {
      fmt::print(stderr, "lm_limit_bench: a chunk did not decode to its digest\n");
      return 1;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("{{\"chunks\": {}, \"us_per_chunk\": {:.1f}}}\n", stored.size(),
             stored.empty() ? 0.0 : secs * 1e6 / stored.size());
  return 0;
}

int Usage() {
  fmt::print(stderr,
             "usage: lm_limit_bench backup FILE [--threads N] [--level L] [--segment-mib S] "
             "[--chunk-kib C]\n       lm_limit_bench read FILE [--level L] [--chunk-kib C]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Usage();
  const bool read_mode = std::strcmp(argv[1], "read") == 0;
  if (!read_mode && std::strcmp(argv[1], "backup") != 0) return Usage();
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  int level = 1;
  uint64_t segment = 64ull << 20, chunk = 128ull << 10;
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    unsigned long long v = std::strtoull(argv[i + 1], nullptr, 10);
    if (flag == "--threads" && v >= 1 && v <= 256) threads = static_cast<unsigned>(v);
    else if (flag == "--level" && v >= 1 && v <= 19) level = static_cast<int>(v);
    else if (flag == "--segment-mib" && v >= 1) segment = v << 20;
    else if (flag == "--chunk-kib" && v >= 4) chunk = v << 10;
    else return Usage();
  }
  std::ifstream in(argv[2], std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    fmt::print(stderr, "lm_limit_bench: cannot read {}\n", argv[2]);
    return 1;
  }
  if (read_mode) return ReadCeiling(data, chunk, level);
  segment = (segment + chunk - 1) / chunk * chunk;  // whole chunks per segment
  for (uint64_t off = 0; off < data.size(); off += segment) {
    const uint64_t end = std::min<uint64_t>(data.size(), off + segment);
    const uint64_t nchunks = (end - off + chunk - 1) / chunk;
    std::atomic<uint64_t> next{0}, stored{0};
    auto work = [&] {
      std::string out;
      uint64_t mine = 0;
      for (uint64_t i; (i = next.fetch_add(1)) < nchunks;) {
        const char* p = data.data() + off + i * chunk;
        size_t len = static_cast<size_t>(std::min<uint64_t>(chunk, end - (off + i * chunk)));
        if (IsAllZero(p, len)) continue;
        Digest d = Digest::Of(p, len);
        asm volatile("" : : "r"(d.bytes.data()) : "memory");  // the digest is used
        CompressChunk(std::string_view(p, len), level, &out);
        mine += kRecordHeaderSize + out.size();
      }
      stored += mine;
    };
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; t++) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("{{\"offset\": {}, \"raw\": {}, \"stored\": {}, \"cpu_seconds\": {:.6f}}}\n", off,
               end - off, stored.load(), secs);
  }
  return 0;
}

// OverlayFile: the writable layer of one file in a backup's overlay (issue 4).
//
// Granularity is a 4 KiB block. Written blocks live in a sparse delta file at their
// logical offsets (`<id>.data`); which blocks are present, the file's size, and how much of
// the backed-up (base) file still shows through are recorded in an append-only journal
// (`<id>.journal`). A read takes each block from the delta if present, else from the base
// (below base_limit), else zeros. A write of whole blocks never reads the base; a partial
// block reads only that block of the base first.
//
// Durability: Sync() fdatasyncs the delta, then appends the changes since the last Sync to
// the journal and fdatasyncs it. Journal records carry a checksum; replay stops at the first
// torn or damaged record. After a crash every synced byte is there; unsynced writes may be
// lost (their blocks read as before), never half-applied to the journal's view.
//
// Journal records, 32 bytes, little-endian: u32 magic "LMOJ", u32 type, u64 a, u64 b,
// u32 reserved, u32 low 32 bits of XXH3-64 over the first 28 bytes.
//   type 1: blocks [a, b) are present in the delta
//   type 2: size = a, base_limit = b (blocks at or past ceil(size / 4 KiB) are dropped)
// Open() replays the journal and rewrites it compactly (temp file, fsync, rename).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/range_reader.h"
#include "base/status.h"

namespace lm {

inline constexpr uint32_t kOverlayBlock = 4096;

// Reads [off, off+len) of the base file (off+len <= the base's size).

class OverlayFile {
 public:
  // Opens or creates `dir/<id>.data` and `dir/<id>.journal`. A new file starts with
  // size = base_limit = base_size (0 for a file that has no base).
  // Every byte, size change, hole and sync of both files goes through `env` (tests inject
  // power loss there).
  static Result<std::unique_ptr<OverlayFile>> Open(Env* env, const std::string& dir, const std::string& id,
                                                   uint64_t base_size);
  uint64_t size() const;
  uint64_t base_limit() const;
  uint64_t present_blocks() const;  // blocks held in the delta
  // The byte ranges [start, end) of the blocks held in the delta, in order, merged.
  std::vector<std::pair<uint64_t, uint64_t>> PresentRanges() const;

  Status Read(uint64_t off, size_t len, char* out, const RangeReader& base);
  Status Write(uint64_t off, const char* data, size_t len, const RangeReader& base);
  Status Truncate(uint64_t size);
  // Makes [off, off+len) read as zeros, below the current size only (fallocate's
  // PUNCH_HOLE and ZERO_RANGE). Whole blocks become holes of the delta, marked present.
  Status Zero(uint64_t off, uint64_t len, const RangeReader& base);
  Status Sync();
  bool dirty() const;  // changes not yet synced
  // Deletes both files (after discard or unlink).
  Status Remove();

 private:
  OverlayFile() = default;
  Status Replay();
  Status Compact();
  void Append(uint32_t type, uint64_t a, uint64_t b, std::string* out) const;
  bool Present(uint64_t block) const;
  void SetPresent(uint64_t block, bool on);
  // Fills one whole block `b` into buf: delta, base or zeros.
  Status ReadBlock(uint64_t b, char* buf, const RangeReader& base);
  // A shrinking truncate's clean-up of the delta (punch blocks past the end, zero the tail
  // of the last block), held back until the smaller size is durable in the journal.
  struct Pending {
    bool punch;  // else: write zeros
    uint64_t off, len;
  };
  Status CommitShrinkLocked();  // a Sync now if anything is pending (it applies pending_)
  Status SyncLocked();
  Status ApplyPendingLocked();

  Env* env_ = nullptr;
  std::string data_path_, journal_path_;
  UniqueFd data_fd_, journal_fd_;
  uint64_t journal_size_ = 0;
  mutable std::mutex mu_;
  uint64_t size_ = 0, base_limit_ = 0;
  std::vector<uint64_t> bits_;             // present blocks
  std::vector<uint64_t> dirty_;            // blocks written since the last Sync (sorted on Sync)
  bool size_dirty_ = false;
  std::vector<Pending> pending_;
  uint64_t present_count_ = 0;
};

}  // namespace lm

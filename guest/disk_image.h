// Disk-image formats seen from inside a backup copy: which byte ranges of an image file are
// format metadata (qcow2 header, L1/L2 and refcount tables; VMDK sparse header, descriptor,
// grain directories and tables), and where a guest offset lives in the file. Raw and VMDK
// flat extents are guest disks byte for byte. Compressed qcow2 clusters (deflate or zstd)
// and streamOptimized VMDK grains (zlib) map to their whole compressed extent, and
// ReadGuest inflates them. Formats: the qcow2 specification (docs/interop/qcow2.txt in
// QEMU) and VMware's "Virtual Disk Format 5.0".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/range_reader.h"
#include "base/status.h"

namespace lm {

// Reads [off, off+len) of the image file.

enum class ImageFormat { kRaw, kQcow2, kVmdkSparse, kVmdkStream };
const char* FormatName(ImageFormat f);

struct ByteRange {
  uint64_t off = 0, len = 0;
  std::string what;  // "qcow2 L1 table", ...
};

class DiskImage {
 public:
  // Detects the format from the first bytes. `path` names the file in errors.
  static Result<DiskImage> Open(RangeReader read, uint64_t file_size, const std::string& path);
  ImageFormat format() const { return format_; }
  uint64_t guest_size() const { return guest_size_; }
  // Format metadata, in file offsets (empty for raw).
  const std::vector<ByteRange>& metadata() const { return metadata_; }
  // File ranges holding guest bytes [off, off+len); unallocated parts have none. A
  // compressed cluster or grain maps to its whole compressed extent.
  Result<std::vector<ByteRange>> Map(uint64_t off, uint64_t len) const;
  // The format metadata a reader needs to reach [off, off+len): header, L1 or grain
  // directory, and the L2 or grain tables that cover the range.
  std::vector<ByteRange> MetadataFor(uint64_t off, uint64_t len) const;
  // Reads guest bytes (zeros where unallocated).
  Status ReadGuest(uint64_t off, size_t len, char* out) const;

 private:
  Status OpenQcow2();
  Status OpenVmdk();
  Status ReadUnit(uint64_t u, std::string* out) const;  // one compressed unit, inflated
  Result<uint64_t> CompressedLen(uint64_t u) const;
  RangeReader read_;
  std::string path_;
  ImageFormat format_ = ImageFormat::kRaw;
  uint64_t file_size_ = 0, guest_size_ = 0;
  std::vector<ByteRange> metadata_;
  // qcow2: cluster size and the L2 tables (host offsets of data clusters, 0 = unallocated)
  // VMDK: grain size and grain tables, flattened to one entry per grain.
  uint64_t unit_ = 0;
  // Allocated guest units only (so a damaged header cannot make it huge): unit index ->
  // host offset and compressed length (0: stored as is; ~0: a streamOptimized grain,
  // length in its marker).
  struct Unit {
    uint64_t host = 0;
    uint32_t clen = 0;
  };
  std::unordered_map<uint64_t, Unit> units_;
  Unit At(uint64_t u) const {
    auto it = units_.find(u);
    return it == units_.end() ? Unit{} : it->second;
  }
  bool zstd_ = false;           // qcow2 compression type 1
  uint64_t table_span_ = 0;     // guest bytes one L2 / grain table covers
  std::vector<ByteRange> tables_;  // by guest table index: its L2 / grain table (len 0: none)
  std::vector<ByteRange> roots_;   // header, L1 / grain directory, descriptor
  // The last inflated unit (metadata and file reads come in small pieces).
  struct Inflated {
    std::mutex mu;
    uint64_t unit = ~uint64_t{0};
    std::string bytes;
  };
  std::shared_ptr<Inflated> inflated_ = std::make_shared<Inflated>();
};

}  // namespace lm

// Filesystems inside a guest's partitions, read through livemount's own stack: a
// GuestDevice turns partition-relative reads into DiskImage::ReadGuest calls (which read
// the backed-up image file through the repository or a local file) and records every
// guest range it reads. libext2fs reads through a custom io_manager and libntfs-3g through
// custom device operations, both over a GuestDevice, so the ranges a filesystem needed
// to open, to walk to a file and to map its blocks are known exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "guest/disk_image.h"
#include "guest/partitions.h"

namespace lm {

// Merged, sorted (offset, length) ranges.
class RangeSet {
 public:
  void Add(uint64_t off, uint64_t len);
  void Add(const RangeSet& other);
  const std::vector<std::pair<uint64_t, uint64_t>>& ranges() const;  // merged on demand
  uint64_t bytes() const;
  void clear() { raw_.clear(); merged_ = true; }

 private:
  mutable std::vector<std::pair<uint64_t, uint64_t>> raw_;
  mutable bool merged_ = true;
};

class GuestDevice {
 public:
  GuestDevice(const DiskImage& img, const Partition& part, std::string what)
      : img_(img), part_(part), what_(std::move(what)) {}
  // Reads partition-relative bytes; past the partition's end is an error.
  Status Read(uint64_t off, size_t len, char* out);
  uint64_t size() const { return part_.size; }
  const Partition& partition() const { return part_; }
  const std::string& what() const { return what_; }  // "vm@id:disk.qcow2 partition 1"
  // Guest-absolute ranges read since the last TakeReads().
  RangeSet TakeReads();
  Status last_error() const { return last_error_; }

 private:
  const DiskImage& img_;
  Partition part_;
  std::string what_;
  RangeSet reads_;
  Status last_error_ = Status::Ok();
};

struct GuestEntry {
  std::string name;
  char type = 'f';  // 'f' file, 'd' directory, 'l' symlink, 'o' other
  uint64_t size = 0;
  int64_t mtime = 0;  // seconds since the epoch
};

class GuestFs {
 public:
  virtual ~GuestFs() = default;
  virtual std::string type() const = 0;  // "ext4", "ntfs", ...
  virtual std::string label() const { return ""; }
  // `path` is absolute inside the filesystem ("/" for its root).
  virtual Result<GuestEntry> Stat(const std::string& path) = 0;
  virtual Result<std::vector<GuestEntry>> List(const std::string& dir) = 0;  // sorted by name
  virtual Status Read(const std::string& path, uint64_t off, size_t len, std::string* out) = 0;
  // Partition-relative ranges holding the file's bytes, from its block map (what is read
  // to get the map is recorded by the device, the data itself is not read).
  virtual Result<RangeSet> DataRanges(const std::string& path) = 0;
  // Forgets cached inodes and lookups, so the next walk reads (and records) all it needs.
  virtual void DropCaches() = 0;
};

// Probes the partition (ext2/3/4, NTFS) and opens it read-only. Unsupported or damaged
// filesystems are errors naming the device and what is wrong.
Result<std::unique_ptr<GuestFs>> OpenGuestFs(GuestDevice& dev);
Result<std::unique_ptr<GuestFs>> OpenExtFs(GuestDevice& dev);
Result<std::unique_ptr<GuestFs>> OpenNtfs(GuestDevice& dev);

}  // namespace lm

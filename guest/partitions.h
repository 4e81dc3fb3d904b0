// The guest disk's partitions: MBR (primary, extended and logical partitions through the
// EBR chain) or GPT (header and entry array checked against their CRC32s). A disk without
// a partition table is one partition, number 0, covering the whole disk (a filesystem made
// straight on the disk). Damaged tables are errors naming the disk and what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "guest/disk_image.h"

namespace lm {

struct Partition {
  int number = 0;            // as Linux numbers them: 1-4 primary, 5+ logical; 0 whole disk
  uint64_t start = 0, size = 0;  // guest bytes
  std::string scheme;        // "mbr", "gpt", "none"
  std::string type;          // MBR type ("0x83") or GPT type GUID
  std::string name;          // GPT partition name (UTF-16 reduced to ASCII)
  bool logical = false;      // inside an MBR extended partition
};

struct PartitionTable {
  std::string scheme;                // "mbr", "gpt" or "none"
  std::vector<Partition> parts;      // in number order
  std::vector<ByteRange> structure;  // guest ranges of the tables themselves
};

// `disk` names the disk in errors ("vm@id:disk.qcow2").
Result<PartitionTable> ReadPartitions(const DiskImage& img, const std::string& disk);

// The guest's partition table (MBR with extended/logical partitions, or GPT) and the first
// 64 KiB of each partition (where ext, NTFS and FAT keep their superblocks), as guest ranges.
Result<std::vector<ByteRange>> GuestStructure(const DiskImage& img);

}  // namespace lm

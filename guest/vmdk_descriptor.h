// VMDK text descriptors (VMware's "Virtual Disk Format 5.0", section "The Descriptor File"):
// the small `.vmdk` that names a disk's extents (`RW 2097152 FLAT "disk-flat.vmdk" 0`),
// its type (createType) and its parent. livemount reads them to show a flat VMware disk as
// one raw view, and writes one (monolithicFlat) over the raw view of a qcow2 image, which is
// how QEMU (format=vmdk) and ESXi read a disk kept as a plain file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace lm {

// Longest descriptor file read as text (real ones are under 2 KiB).
inline constexpr uint64_t kMaxVmdkDescriptor = 64 * 1024;

struct VmdkExtent {
  std::string access;  // "RW", "RDONLY", "NOACCESS"
  uint64_t sectors = 0;
  std::string type;    // "FLAT", "VMFS", "ZERO", "SPARSE", "VMFSSPARSE", ...
  std::string file;    // relative to the descriptor's directory; "" for ZERO
  uint64_t offset = 0;  // in sectors, into `file` (FLAT and VMFS)
};

struct VmdkDescriptor {
  std::string create_type;  // "monolithicFlat", "vmfs", "twoGbMaxExtentFlat", ...
  bool has_parent = false;  // parentCID other than ffffffff: a snapshot's delta
  std::string adapter_type; // ddb.adapterType: "lsilogic", "pvscsi", "ide", ...
  std::vector<VmdkExtent> extents;
  uint64_t sectors() const;
};

// True if the bytes start like a text descriptor (not a sparse extent).
bool LooksLikeVmdkDescriptor(const std::string& head);
// Parses a descriptor; errors name `file` and the line.
Result<VmdkDescriptor> ParseVmdkDescriptor(const std::string& text, const std::string& file);
// A monolithicFlat descriptor with one FLAT extent of `sectors` in `extent_file`.
// `adapter_type`: "lsilogic" (ESXi's default for SCSI), "ide", ... `cid`: 8 hex digits.
std::string FormatVmdkDescriptor(uint64_t sectors, const std::string& extent_file,
                                 const std::string& adapter_type, uint32_t cid);

}  // namespace lm

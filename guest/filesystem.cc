#include "guest/filesystem.h"

#include <algorithm>
#include <cstring>

#include "base/bytes.h"

namespace lm {

void RangeSet::Add(uint64_t off, uint64_t len) {
  if (len == 0) return;
  raw_.push_back({off, len});
  merged_ = false;
}

void RangeSet::Add(const RangeSet& other) {
  for (auto& r : other.ranges()) Add(r.first, r.second);
}

const std::vector<std::pair<uint64_t, uint64_t>>& RangeSet::ranges() const {
  if (merged_) return raw_;
  std::sort(raw_.begin(), raw_.end());
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (auto& r : raw_) {
    if (!out.empty() && r.first <= out.back().first + out.back().second) {
      out.back().second = std::max(out.back().first + out.back().second, r.first + r.second) - out.back().first;
    } else {
      out.push_back(r);
    }
  }
  raw_ = std::move(out);
  merged_ = true;
  return raw_;
}

uint64_t RangeSet::bytes() const {
  uint64_t n = 0;
  for (auto& r : ranges()) n += r.second;
  return n;
}

Status GuestDevice::Read(uint64_t off, size_t len, char* out) {
  if (off + len > part_.size || off + len < off) {
    last_error_ = Status::Corrupt(what_ + ": read at " + std::to_string(off) + " past the end of the partition");
    return last_error_;
  }
  reads_.Add(part_.start + off, len);
  Status s = img_.ReadGuest(part_.start + off, len, out);
  if (!s.ok()) last_error_ = s;
  return s;
}

RangeSet GuestDevice::TakeReads() {
  RangeSet out = std::move(reads_);
  reads_.clear();
  return out;
}

Result<std::unique_ptr<GuestFs>> OpenGuestFs(GuestDevice& dev) {
  char sb[1024 + 1024];
  if (dev.size() < sizeof sb) return Status::Unsupported(dev.what() + ": too small for a filesystem");
  LM_RETURN_IF_ERROR(dev.Read(0, sizeof sb, sb));
  if (std::memcmp(sb + 3, "NTFS    ", 8) == 0) return OpenNtfs(dev);
  uint16_t ext_magic = static_cast<uint16_t>(static_cast<uint8_t>(sb[1024 + 56]) | static_cast<uint8_t>(sb[1024 + 57]) << 8);
  if (ext_magic == 0xEF53) return OpenExtFs(dev);
  if (std::memcmp(sb + 54, "FAT", 3) == 0 || std::memcmp(sb + 82, "FAT32", 5) == 0) {
    return Status::Unsupported(dev.what() + ": FAT filesystem (not browsable; ext2/3/4 and NTFS are)");
  }
  if (std::memcmp(sb, "XFSB", 4) == 0) return Status::Unsupported(dev.what() + ": XFS filesystem (not browsable; ext2/3/4 and NTFS are)");
  if (std::memcmp(sb + 1024 + 16, "LVM2", 4) == 0 || std::memcmp(sb + 512 + 24, "LVM2", 4) == 0) {
    return Status::Unsupported(dev.what() + ": LVM physical volume (not browsable)");
  }
  return Status::Unsupported(dev.what() + ": no ext2/3/4 or NTFS filesystem found");
}

}  // namespace lm

#include "profile/disk_image.h"

#include <cstring>

#include "store/bytes.h"

namespace lm {

namespace {
uint64_t BE64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}
uint32_t BE32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}
constexpr uint64_t kQcowOffsetMask = 0x00fffffffffffe00ull;  // bits 9-55
}  // namespace

Result<DiskImage> DiskImage::Open(FileReader read, uint64_t file_size, const std::string& path) {
  DiskImage img;
  img.read_ = std::move(read);
  img.path_ = path;
  img.file_size_ = file_size;
  img.guest_size_ = file_size;
  if (file_size < 512) return img;
  char magic[4];
  LM_RETURN_IF_ERROR(img.read_(0, 4, magic));
  if (std::memcmp(magic, "QFI\xfb", 4) == 0) {
    img.format_ = ImageFormat::kQcow2;
    LM_RETURN_IF_ERROR(img.OpenQcow2());
  } else if (std::memcmp(magic, "KDMV", 4) == 0) {
    img.format_ = ImageFormat::kVmdkSparse;
    LM_RETURN_IF_ERROR(img.OpenVmdk());
  }
  return img;
}

Status DiskImage::OpenQcow2() {
  char h[104] = {};
  LM_RETURN_IF_ERROR(read_(0, std::min<uint64_t>(104, file_size_), h));
  uint32_t version = BE32(h + 4);
  if (version != 2 && version != 3) return Status::Unsupported(path_ + ": qcow2 version " + std::to_string(version));
  if (BE64(h + 8) != 0) return Status::Unsupported(path_ + ": qcow2 with a backing file");
  uint32_t bits = BE32(h + 20);
  if (bits < 9 || bits > 21) return Status::Corrupt(path_ + ": qcow2 cluster bits " + std::to_string(bits));
  unit_ = uint64_t{1} << bits;
  guest_size_ = BE64(h + 24);
  uint32_t l1_size = BE32(h + 36);
  uint64_t l1_off = BE64(h + 40);
  uint64_t rt_off = BE64(h + 48);
  uint32_t rt_clusters = BE32(h + 56);
  uint32_t nb_snapshots = BE32(h + 60);
  uint64_t snap_off = BE64(h + 64);
  uint64_t l2_entries = unit_ / 8;
  auto inside = [&](uint64_t off, uint64_t len) { return off + len <= file_size_ && off + len >= off; };
  if (!inside(l1_off, uint64_t{l1_size} * 8) || !inside(rt_off, uint64_t{rt_clusters} * unit_) ||
      l1_size > (1u << 26) || guest_size_ > l1_size * l2_entries * unit_) {
    return Status::Corrupt(path_ + ": qcow2 header points outside the file");
  }
  metadata_.push_back({0, unit_, "qcow2 header"});
  metadata_.push_back({l1_off, uint64_t{l1_size} * 8, "qcow2 L1 table"});
  metadata_.push_back({rt_off, uint64_t{rt_clusters} * unit_, "qcow2 refcount table"});
  if (nb_snapshots && inside(snap_off, 1)) metadata_.push_back({snap_off, unit_, "qcow2 snapshot table"});
  std::string l1(l1_size * 8, '\0');
  LM_RETURN_IF_ERROR(read_(l1_off, l1.size(), l1.data()));
  uint64_t units = (guest_size_ + unit_ - 1) / unit_;
  map_.assign(units, 0);
  std::string l2(unit_, '\0');
  for (uint32_t i = 0; i < l1_size && uint64_t{i} * l2_entries < units; i++) {
    uint64_t l2_off = BE64(l1.data() + 8 * i) & kQcowOffsetMask;
    if (!l2_off) continue;
    if (!inside(l2_off, unit_)) return Status::Corrupt(path_ + ": qcow2 L2 table outside the file");
    metadata_.push_back({l2_off, unit_, "qcow2 L2 table"});
    LM_RETURN_IF_ERROR(read_(l2_off, unit_, l2.data()));
    for (uint64_t j = 0; j < l2_entries && i * l2_entries + j < units; j++) {
      uint64_t e = BE64(l2.data() + 8 * j);
      if (e & (uint64_t{1} << 62)) {
        return Status::Unsupported(path_ + ": compressed qcow2 clusters are not supported yet");
      }
      bool zero_flag = version == 3 && (e & 1);
      uint64_t host = e & kQcowOffsetMask;
      if (host && !zero_flag) map_[i * l2_entries + j] = host;
    }
  }
  std::string rt(uint64_t{rt_clusters} * unit_, '\0');
  LM_RETURN_IF_ERROR(read_(rt_off, rt.size(), rt.data()));
  for (uint64_t i = 0; i < rt.size() / 8; i++) {
    uint64_t rb = BE64(rt.data() + 8 * i) & ~uint64_t{511};
    if (rb && inside(rb, unit_)) metadata_.push_back({rb, unit_, "qcow2 refcount block"});
  }
  return Status::Ok();
}

Status DiskImage::OpenVmdk() {
  char h[512];
  LM_RETURN_IF_ERROR(read_(0, 512, h));
  uint32_t version = GetU32(h + 4);
  uint32_t flags = GetU32(h + 8);
  uint64_t capacity = GetU64(h + 12);  // sectors
  uint64_t grain = GetU64(h + 20);     // sectors
  uint64_t desc_off = GetU64(h + 28), desc_size = GetU64(h + 36);
  uint32_t gtes = GetU32(h + 44);
  uint64_t rgd_off = GetU64(h + 48), gd_off = GetU64(h + 56);
  uint16_t compress = static_cast<uint16_t>(static_cast<uint8_t>(h[77]) | static_cast<uint8_t>(h[78]) << 8);
  if (version > 3) return Status::Unsupported(path_ + ": VMDK version " + std::to_string(version));
  if (compress != 0 || gd_off == ~uint64_t{0}) {
    return Status::Unsupported(path_ + ": streamOptimized VMDK is not supported yet");
  }
  if (grain == 0 || (grain & (grain - 1)) || gtes == 0 || capacity == 0) {
    return Status::Corrupt(path_ + ": VMDK header has invalid geometry");
  }
  unit_ = grain * 512;
  guest_size_ = capacity * 512;
  uint64_t grains = (capacity + grain - 1) / grain;
  uint64_t ngt = (grains + gtes - 1) / gtes;
  metadata_.push_back({0, 512, "VMDK header"});
  if (desc_off && desc_size) metadata_.push_back({desc_off * 512, desc_size * 512, "VMDK descriptor"});
  map_.assign(grains, 0);
  std::vector<uint64_t> gds = {gd_off};
  if ((flags & 2) && rgd_off) gds.push_back(rgd_off);  // redundant grain directory
  std::string gt(uint64_t{gtes} * 4, '\0');
  for (size_t g = 0; g < gds.size(); g++) {
    uint64_t off = gds[g] * 512;
    if (off + ngt * 4 > file_size_) return Status::Corrupt(path_ + ": VMDK grain directory outside the file");
    metadata_.push_back({off, ngt * 4, g ? "VMDK redundant grain directory" : "VMDK grain directory"});
    std::string gd(ngt * 4, '\0');
    LM_RETURN_IF_ERROR(read_(off, gd.size(), gd.data()));
    for (uint64_t t = 0; t < ngt; t++) {
      uint64_t gt_off = uint64_t{GetU32(gd.data() + 4 * t)} * 512;
      if (!gt_off) continue;
      if (gt_off + gt.size() > file_size_) return Status::Corrupt(path_ + ": VMDK grain table outside the file");
      metadata_.push_back({gt_off, gt.size(), g ? "VMDK redundant grain table" : "VMDK grain table"});
      if (g) continue;
      LM_RETURN_IF_ERROR(read_(gt_off, gt.size(), gt.data()));
      for (uint64_t e = 0; e < gtes && t * gtes + e < grains; e++) {
        uint32_t sector = GetU32(gt.data() + 4 * e);
        if (sector > 1) map_[t * gtes + e] = uint64_t{sector} * 512;  // 1: a zero grain
      }
    }
  }
  return Status::Ok();
}

Result<std::vector<ByteRange>> DiskImage::Map(uint64_t off, uint64_t len) const {
  std::vector<ByteRange> out;
  uint64_t end = std::min(off + len, guest_size_);
  if (format_ == ImageFormat::kRaw) {
    if (off < end) out.push_back({off, end - off, "guest data"});
    return out;
  }
  for (uint64_t pos = off; pos < end;) {
    uint64_t u = pos / unit_, in = pos % unit_;
    uint64_t n = std::min(end - pos, unit_ - in);
    if (map_[u]) {
      uint64_t host = map_[u] + in;
      if (!out.empty() && out.back().off + out.back().len == host) out.back().len += n;
      else out.push_back({host, n, "guest data"});
    }
    pos += n;
  }
  return out;
}

Status DiskImage::ReadGuest(uint64_t off, size_t len, char* out) const {
  std::memset(out, 0, len);
  if (format_ == ImageFormat::kRaw) {
    uint64_t n = off < file_size_ ? std::min<uint64_t>(len, file_size_ - off) : 0;
    return n ? read_(off, n, out) : Status::Ok();
  }
  for (uint64_t pos = off; pos < off + len;) {
    uint64_t u = pos / unit_, in = pos % unit_;
    uint64_t n = std::min(off + len - pos, unit_ - in);
    if (u < map_.size() && map_[u]) LM_RETURN_IF_ERROR(read_(map_[u] + in, n, out + (pos - off)));
    pos += n;
  }
  return Status::Ok();
}

Result<std::vector<ByteRange>> GuestStructure(const DiskImage& img) {
  std::vector<ByteRange> out;
  if (img.guest_size() < 512) return out;
  char mbr[512];
  LM_RETURN_IF_ERROR(img.ReadGuest(0, 512, mbr));
  out.push_back({0, 512, "MBR"});
  if (static_cast<uint8_t>(mbr[510]) != 0x55 || static_cast<uint8_t>(mbr[511]) != 0xAA) return out;
  constexpr uint64_t kSuper = 64 * 1024;
  auto partition = [&](uint64_t lba, const char* what) {
    if (lba * 512 < img.guest_size()) out.push_back({lba * 512, kSuper, what});
  };
  for (int i = 0; i < 4; i++) {
    const char* e = mbr + 446 + 16 * i;
    uint8_t type = static_cast<uint8_t>(e[4]);
    uint64_t start = GetU32(e + 8);
    if (type == 0 || start == 0) continue;
    if (type == 0xEE) {  // GPT: header, entries, each partition's start, backup at the end
      char hdr[512];
      LM_RETURN_IF_ERROR(img.ReadGuest(512, 512, hdr));
      if (std::memcmp(hdr, "EFI PART", 8) != 0) continue;
      uint64_t entries = GetU64(hdr + 72);
      uint32_t count = std::min<uint32_t>(GetU32(hdr + 80), 1024);
      uint32_t esize = GetU32(hdr + 84);
      if (esize < 128 || esize > 4096) continue;
      out.push_back({512, 512, "GPT header"});
      out.push_back({entries * 512, uint64_t{count} * esize, "GPT entries"});
      std::string tab(uint64_t{count} * esize, '\0');
      LM_RETURN_IF_ERROR(img.ReadGuest(entries * 512, tab.size(), tab.data()));
      for (uint32_t k = 0; k < count; k++) {
        uint64_t first = GetU64(tab.data() + k * esize + 32);
        if (first) partition(first, "partition start (superblocks)");
      }
      out.push_back({img.guest_size() - 33 * 512, 33 * 512, "backup GPT"});
      continue;
    }
    if (type == 0x05 || type == 0x0F || type == 0x85) {  // extended: follow the EBR chain
      uint64_t ebr = start;
      for (int hops = 0; hops < 128 && ebr; hops++) {
        char b[512];
        LM_RETURN_IF_ERROR(img.ReadGuest(ebr * 512, 512, b));
        out.push_back({ebr * 512, 512, "EBR"});
        if (static_cast<uint8_t>(b[510]) != 0x55) break;
        uint64_t rel = GetU32(b + 446 + 8);
        if (rel) partition(ebr + rel, "logical partition start (superblocks)");
        uint64_t next = GetU32(b + 446 + 16 + 8);
        ebr = next ? start + next : 0;
      }
      continue;
    }
    partition(start, "partition start (superblocks)");
  }
  return out;
}

}  // namespace lm

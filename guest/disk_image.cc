#include "guest/disk_image.h"


#include <zlib.h>
#include <zstd.h>

#include <cstring>

#include "base/bytes.h"

namespace lm {

namespace {
uint64_t BE64(const char* p) { return GetBE64(p); }
uint32_t BE32(const char* p) { return GetBE32(p); }
constexpr uint64_t kQcowOffsetMask = 0x00fffffffffffe00ull;  // bits 9-55
constexpr uint64_t kVmdkGdAtEnd = ~uint64_t{0};
constexpr uint32_t kLenFromMarker = ~uint32_t{0};  // a streamOptimized grain's length

// Inflates a zlib (window_bits 15) or raw deflate (-15) stream into exactly out->size() bytes.
bool Inflate(const std::string& in, int window_bits, std::string* out) {
  z_stream z{};
  if (inflateInit2(&z, window_bits) != Z_OK) return false;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out->data());
  z.avail_out = static_cast<uInt>(out->size());
  int rc = inflate(&z, Z_FINISH);
  bool ok = (rc == Z_STREAM_END || rc == Z_BUF_ERROR) && z.avail_out == 0;
  inflateEnd(&z);
  return ok;
}

bool UnZstd(const std::string& in, std::string* out) {
  ZSTD_DStream* d = ZSTD_createDStream();
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  ZSTD_outBuffer ob{out->data(), out->size(), 0};
  size_t rc = 1;
  while (ob.pos < ob.size && ib.pos < ib.size && rc != 0) {
    rc = ZSTD_decompressStream(d, &ob, &ib);
    if (ZSTD_isError(rc)) break;
  }
  ZSTD_freeDStream(d);
  return !ZSTD_isError(rc) && ob.pos == ob.size;
}
}  // namespace

const char* FormatName(ImageFormat f) {
  switch (f) {
    case ImageFormat::kQcow2: return "qcow2";
    case ImageFormat::kVmdkSparse: return "VMDK (monolithicSparse)";
    case ImageFormat::kVmdkStream: return "VMDK (streamOptimized)";
    default: return "raw";
  }
}

Result<DiskImage> DiskImage::Open(RangeReader read, uint64_t file_size, const std::string& path) {
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
  char h[112] = {};
  LM_RETURN_IF_ERROR(read_(0, std::min<uint64_t>(sizeof h, file_size_), h));
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
  uint32_t header_len = version == 3 ? BE32(h + 100) : 72;
  if (version == 3 && header_len > 104) {
    uint8_t type = static_cast<uint8_t>(h[104]);
    if (type > 1) return Status::Unsupported(path_ + ": qcow2 compression type " + std::to_string(type));
    zstd_ = type == 1;
  }
  auto inside = [&](uint64_t off, uint64_t len) { return off + len <= file_size_ && off + len >= off; };
  if (!inside(l1_off, uint64_t{l1_size} * 8) || !inside(rt_off, uint64_t{rt_clusters} * unit_) ||
      l1_size > (1u << 26) || guest_size_ > l1_size * l2_entries * unit_) {
    return Status::Corrupt(path_ + ": qcow2 header points outside the file");
  }
  metadata_.push_back({0, unit_, "qcow2 header"});
  metadata_.push_back({l1_off, uint64_t{l1_size} * 8, "qcow2 L1 table"});
  roots_ = {metadata_[0], metadata_[1]};
  table_span_ = l2_entries * unit_;
  metadata_.push_back({rt_off, uint64_t{rt_clusters} * unit_, "qcow2 refcount table"});
  if (nb_snapshots && inside(snap_off, 1)) metadata_.push_back({snap_off, unit_, "qcow2 snapshot table"});
  std::string l1(l1_size * 8, '\0');
  LM_RETURN_IF_ERROR(read_(l1_off, l1.size(), l1.data()));
  uint64_t units = (guest_size_ + unit_ - 1) / unit_;
  tables_.assign((units + l2_entries - 1) / l2_entries, ByteRange{});
  std::string l2(unit_, '\0');
  uint32_t csize_bits = bits - 8;  // compressed descriptor: offset bits, then sector count
  uint32_t offset_bits = 62 - csize_bits;
  for (uint32_t i = 0; i < l1_size && uint64_t{i} * l2_entries < units; i++) {
    uint64_t l2_off = BE64(l1.data() + 8 * i) & kQcowOffsetMask;
    if (!l2_off) continue;
    if (!inside(l2_off, unit_)) return Status::Corrupt(path_ + ": qcow2 L2 table outside the file");
    metadata_.push_back({l2_off, unit_, "qcow2 L2 table"});
    tables_[i] = metadata_.back();
    LM_RETURN_IF_ERROR(read_(l2_off, unit_, l2.data()));
    for (uint64_t j = 0; j < l2_entries && i * l2_entries + j < units; j++) {
      uint64_t e = BE64(l2.data() + 8 * j);
      uint64_t u = i * l2_entries + j;
      if (e & (uint64_t{1} << 62)) {  // compressed: offset, then (sectors - 1)
        uint64_t host = e & ((uint64_t{1} << offset_bits) - 1);
        uint64_t sectors = ((e >> offset_bits) & ((uint64_t{1} << csize_bits) - 1)) + 1;
        uint64_t len = std::min(sectors * 512 - (host & 511), file_size_ - std::min(host, file_size_));
        if (!host || len == 0 || !inside(host, len)) {
          return Status::Corrupt(path_ + ": qcow2 compressed cluster outside the file");
        }
        units_[u] = {host, static_cast<uint32_t>(len)};
        continue;
      }
      bool zero_flag = version == 3 && (e & 1);
      uint64_t host = e & kQcowOffsetMask;
      if (host && !inside(host, unit_)) return Status::Corrupt(path_ + ": qcow2 data cluster outside the file");
      if (host && !zero_flag) units_[u] = {host, 0};
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
  bool at_end = GetU64(h + 56) == kVmdkGdAtEnd;
  if (at_end) {  // streamOptimized: the real header is the footer, 1 KiB before the end
    if (file_size_ < 1536) return Status::Corrupt(path_ + ": VMDK stream too short for its footer");
    LM_RETURN_IF_ERROR(read_(file_size_ - 1024, 512, h));
    if (std::memcmp(h, "KDMV", 4) != 0) return Status::Corrupt(path_ + ": VMDK footer missing");
  }
  uint32_t version = GetU32(h + 4);
  uint32_t flags = GetU32(h + 8);
  uint64_t capacity = GetU64(h + 12);  // sectors
  uint64_t grain = GetU64(h + 20);     // sectors
  uint64_t desc_off = GetU64(h + 28), desc_size = GetU64(h + 36);
  uint32_t gtes = GetU32(h + 44);
  uint64_t rgd_off = GetU64(h + 48), gd_off = GetU64(h + 56);
  uint16_t compress = static_cast<uint16_t>(static_cast<uint8_t>(h[77]) | static_cast<uint8_t>(h[78]) << 8);
  if (version > 3) return Status::Unsupported(path_ + ": VMDK version " + std::to_string(version));
  bool compressed = flags & (1u << 16);
  if (compressed && compress != 1) return Status::Unsupported(path_ + ": VMDK compression " + std::to_string(compress));
  if (gd_off == kVmdkGdAtEnd) return Status::Corrupt(path_ + ": VMDK footer has no grain directory");
  if (compressed) format_ = ImageFormat::kVmdkStream;
  // Grains beyond 1 GiB do not exist in practice and would overflow the arithmetic below.
  if (grain == 0 || (grain & (grain - 1)) || grain > (1u << 21) || gtes == 0 || capacity == 0) {
    return Status::Corrupt(path_ + ": VMDK header has invalid geometry");
  }
  unit_ = grain * 512;
  guest_size_ = capacity * 512;
  uint64_t grains = (capacity + grain - 1) / grain;
  uint64_t ngt = (grains + gtes - 1) / gtes;
  metadata_.push_back({0, 512, "VMDK header"});
  if (at_end) metadata_.push_back({file_size_ - 1536, 1536, "VMDK footer"});
  if (desc_off && desc_size) metadata_.push_back({desc_off * 512, desc_size * 512, "VMDK descriptor"});
  roots_ = metadata_;
  table_span_ = uint64_t{gtes} * unit_;
  if (ngt > file_size_ / 4 || uint64_t{gtes} * 4 > file_size_) {
    return Status::Corrupt(path_ + ": VMDK grain directory or tables larger than the file");
  }
  tables_.assign(ngt, ByteRange{});
  std::vector<uint64_t> gds = {gd_off};
  if ((flags & 2) && rgd_off) gds.push_back(rgd_off);  // redundant grain directory
  std::string gt(uint64_t{gtes} * 4, '\0');
  for (size_t g = 0; g < gds.size(); g++) {
    uint64_t off = gds[g] * 512;
    if (off + ngt * 4 > file_size_) return Status::Corrupt(path_ + ": VMDK grain directory outside the file");
    metadata_.push_back({off, ngt * 4, g ? "VMDK redundant grain directory" : "VMDK grain directory"});
    if (!g) roots_.push_back(metadata_.back());
    std::string gd(ngt * 4, '\0');
    LM_RETURN_IF_ERROR(read_(off, gd.size(), gd.data()));
    for (uint64_t t = 0; t < ngt; t++) {
      uint64_t gt_off = uint64_t{GetU32(gd.data() + 4 * t)} * 512;
      if (!gt_off) continue;
      if (gt_off + gt.size() > file_size_) return Status::Corrupt(path_ + ": VMDK grain table outside the file");
      metadata_.push_back({gt_off, gt.size(), g ? "VMDK redundant grain table" : "VMDK grain table"});
      if (g) continue;
      tables_[t] = metadata_.back();
      LM_RETURN_IF_ERROR(read_(gt_off, gt.size(), gt.data()));
      for (uint64_t e = 0; e < gtes && t * gtes + e < grains; e++) {
        uint64_t host = uint64_t{GetU32(gt.data() + 4 * e)} * 512;
        if (host <= 512) continue;  // 0: unallocated, 1: a zero grain
        if (host >= file_size_) return Status::Corrupt(path_ + ": VMDK grain outside the file");
        units_[t * gtes + e] = {host, compressed ? kLenFromMarker : 0};  // a marker is read when needed
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
    Unit unit = At(u);
    if (unit.host && unit.clen) {
      LM_ASSIGN_OR_RETURN(uint64_t clen, CompressedLen(u));
      if (out.empty() || out.back().off != unit.host) out.push_back({unit.host, clen, "compressed guest data"});
    } else if (unit.host) {
      uint64_t host = unit.host + in;
      if (!out.empty() && out.back().off + out.back().len == host) out.back().len += n;
      else out.push_back({host, n, "guest data"});
    }
    pos += n;
  }
  return out;
}

std::vector<ByteRange> DiskImage::MetadataFor(uint64_t off, uint64_t len) const {
  std::vector<ByteRange> out;
  if (format_ == ImageFormat::kRaw || len == 0 || off >= guest_size_) return out;
  out = roots_;
  if (table_span_ == 0) return out;
  uint64_t last = std::min(off + len, guest_size_) - 1;
  for (uint64_t t = off / table_span_; t <= last / table_span_ && t < tables_.size(); t++) {
    if (tables_[t].len) out.push_back(tables_[t]);
  }
  return out;
}

Result<uint64_t> DiskImage::CompressedLen(uint64_t u) const {
  Unit unit = At(u);
  if (unit.clen != kLenFromMarker) return uint64_t{unit.clen};
  char marker[12];  // a streamOptimized grain: u64 guest sector, u32 compressed size, data
  uint64_t host = unit.host;
  if (host + 12 > file_size_) return Status::Corrupt(path_ + ": VMDK grain marker outside the file");
  LM_RETURN_IF_ERROR(read_(host, 12, marker));
  uint64_t size = GetU32(marker + 8);
  if (size == 0 || host + 12 + size > file_size_) {
    return Status::Corrupt(path_ + ": VMDK compressed grain at file offset " + std::to_string(host) + " is damaged");
  }
  return 12 + size;
}

Status DiskImage::ReadUnit(uint64_t u, std::string* out) const {
  LM_ASSIGN_OR_RETURN(uint64_t clen, CompressedLen(u));
  std::string packed(clen, '\0');
  uint64_t host = At(u).host;
  LM_RETURN_IF_ERROR(read_(host, packed.size(), packed.data()));
  out->assign(unit_, '\0');
  bool ok;
  if (format_ == ImageFormat::kVmdkStream) {
    ok = Inflate(packed.substr(12), 15, out);
  } else {
    ok = zstd_ ? UnZstd(packed, out) : Inflate(packed, -15, out);
  }
  if (!ok) {
    return Status::Corrupt(path_ + ": compressed " + (format_ == ImageFormat::kQcow2 ? "cluster" : "grain") +
                           " at file offset " + std::to_string(host) + " does not decompress");
  }
  return Status::Ok();
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
    Unit unit = At(u);
    if (unit.host && unit.clen) {
      std::lock_guard lock(inflated_->mu);
      if (inflated_->unit != u) {
        inflated_->unit = ~uint64_t{0};
        LM_RETURN_IF_ERROR(ReadUnit(u, &inflated_->bytes));
        inflated_->unit = u;
      }
      std::memcpy(out + (pos - off), inflated_->bytes.data() + in, n);
    } else if (unit.host) {
      LM_RETURN_IF_ERROR(read_(unit.host + in, n, out + (pos - off)));
    }
    pos += n;
  }
  return Status::Ok();
}

}  // namespace lm

#include "guest/partitions.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>

#include "base/bytes.h"

namespace lm {

namespace {

std::string Guid(const char* p) {  // mixed-endian, as GPT stores it
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X", GetU32(p),
                static_cast<uint8_t>(p[4]) | static_cast<uint8_t>(p[5]) << 8,
                static_cast<uint8_t>(p[6]) | static_cast<uint8_t>(p[7]) << 8, static_cast<uint8_t>(p[8]),
                static_cast<uint8_t>(p[9]), static_cast<uint8_t>(p[10]), static_cast<uint8_t>(p[11]),
                static_cast<uint8_t>(p[12]), static_cast<uint8_t>(p[13]), static_cast<uint8_t>(p[14]),
                static_cast<uint8_t>(p[15]));
  return buf;
}

uint32_t Crc32(const char* p, size_t n) {
  return static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(p), static_cast<uInt>(n)));
}

Status ReadGpt(const DiskImage& img, const std::string& disk, PartitionTable* t) {
  char hdr[512];
  LM_RETURN_IF_ERROR(img.ReadGuest(512, 512, hdr));
  if (std::memcmp(hdr, "EFI PART", 8) != 0) return Status::Corrupt(disk + ": protective MBR but no GPT header");
  uint32_t hsize = GetU32(hdr + 12);
  if (hsize < 92 || hsize > 512) return Status::Corrupt(disk + ": GPT header size " + std::to_string(hsize));
  uint32_t want = GetU32(hdr + 16);
  std::memset(hdr + 16, 0, 4);
  if (Crc32(hdr, hsize) != want) return Status::Corrupt(disk + ": GPT header checksum mismatch");
  uint64_t entries = GetU64(hdr + 72);
  uint32_t count = GetU32(hdr + 80), esize = GetU32(hdr + 84);
  if (esize < 128 || esize > 4096 || count > 4096 || entries * 512 + uint64_t{count} * esize > img.guest_size()) {
    return Status::Corrupt(disk + ": GPT entry array is out of bounds");
  }
  t->structure.push_back({0, 512, "protective MBR"});
  t->structure.push_back({512, 512, "GPT header"});
  std::string tab(uint64_t{count} * esize, '\0');
  LM_RETURN_IF_ERROR(img.ReadGuest(entries * 512, tab.size(), tab.data()));
  if (Crc32(tab.data(), tab.size()) != GetU32(hdr + 88)) return Status::Corrupt(disk + ": GPT entries checksum mismatch");
  t->structure.push_back({entries * 512, tab.size(), "GPT entries"});
  if (img.guest_size() >= 34 * 512) t->structure.push_back({img.guest_size() - 33 * 512, 33 * 512, "backup GPT"});
  for (uint32_t k = 0; k < count; k++) {
    const char* e = tab.data() + uint64_t{k} * esize;
    uint64_t first = GetU64(e + 32), last = GetU64(e + 40);
    bool used = false;
    for (int i = 0; i < 16; i++) used |= e[i] != 0;
    if (!used) continue;
    if (last < first || (last + 1) * 512 > img.guest_size()) {
      return Status::Corrupt(disk + ": GPT partition " + std::to_string(k + 1) + " lies outside the disk");
    }
    Partition p;
    p.number = static_cast<int>(k + 1);
    p.start = first * 512;
    p.size = (last - first + 1) * 512;
    p.scheme = "gpt";
    p.type = Guid(e);
    for (int i = 0; i < 36; i++) {  // UTF-16LE name; non-ASCII shown as '?'
      uint16_t c = static_cast<uint16_t>(static_cast<uint8_t>(e[56 + 2 * i]) | static_cast<uint8_t>(e[57 + 2 * i]) << 8);
      if (!c) break;
      p.name.push_back(c < 0x80 ? static_cast<char>(c) : '?');
    }
    t->parts.push_back(p);
  }
  return Status::Ok();
}

}  // namespace

Result<PartitionTable> ReadPartitions(const DiskImage& img, const std::string& disk) {
  PartitionTable t;
  t.scheme = "none";
  auto whole = [&] {
    t.parts.push_back({0, 0, img.guest_size(), "none", "", "", false});
    return t;
  };
  if (img.guest_size() < 1024) return whole();
  char mbr[512];
  LM_RETURN_IF_ERROR(img.ReadGuest(0, 512, mbr));
  if (static_cast<uint8_t>(mbr[510]) != 0x55 || static_cast<uint8_t>(mbr[511]) != 0xAA) return whole();
  // A FAT or NTFS boot sector also ends in 55 AA; a partition table has sane entries.
  bool any = false, sane = true;
  for (int i = 0; i < 4; i++) {
    const char* e = mbr + 446 + 16 * i;
    uint8_t status = static_cast<uint8_t>(e[0]);
    if (static_cast<uint8_t>(e[4])) any = true;
    if (status != 0 && status != 0x80) sane = false;
  }
  if (!any || !sane) return whole();
  for (int i = 0; i < 4; i++) {
    if (static_cast<uint8_t>(mbr[446 + 16 * i + 4]) == 0xEE) {
      t.scheme = "gpt";
      LM_RETURN_IF_ERROR(ReadGpt(img, disk, &t));
      return t;
    }
  }
  t.scheme = "mbr";
  t.structure.push_back({0, 512, "MBR"});
  uint64_t sectors = img.guest_size() / 512;
  auto check = [&](uint64_t start, uint64_t count, int number) -> Status {
    if (start == 0 || start + count > sectors) {
      return Status::Corrupt(disk + ": partition " + std::to_string(number) + " lies outside the disk (sectors " +
                             std::to_string(start) + "+" + std::to_string(count) + " of " + std::to_string(sectors) + ")");
    }
    return Status::Ok();
  };
  int next_logical = 5;
  for (int i = 0; i < 4; i++) {
    const char* e = mbr + 446 + 16 * i;
    uint8_t type = static_cast<uint8_t>(e[4]);
    uint64_t start = GetU32(e + 8), count = GetU32(e + 12);
    if (type == 0) continue;
    LM_RETURN_IF_ERROR(check(start, count, i + 1));
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", type);
    if (type != 0x05 && type != 0x0F && type != 0x85) {
      t.parts.push_back({i + 1, start * 512, count * 512, "mbr", hex, "", false});
      continue;
    }
    // Extended: a chain of EBRs, each with one logical partition and a link to the next.
    uint64_t ebr = start;
    for (int hops = 0; ebr; hops++) {
      if (hops >= 128) return Status::Corrupt(disk + ": the EBR chain loops or is longer than 128 links");
      LM_RETURN_IF_ERROR(check(ebr, 1, next_logical));
      char b[512];
      LM_RETURN_IF_ERROR(img.ReadGuest(ebr * 512, 512, b));
      if (static_cast<uint8_t>(b[510]) != 0x55 || static_cast<uint8_t>(b[511]) != 0xAA) {
        return Status::Corrupt(disk + ": EBR at sector " + std::to_string(ebr) + " has no signature");
      }
      t.structure.push_back({ebr * 512, 512, "EBR"});
      uint8_t ltype = static_cast<uint8_t>(b[446 + 4]);
      uint64_t rel = GetU32(b + 446 + 8), lcount = GetU32(b + 446 + 12);
      if (ltype && rel) {
        LM_RETURN_IF_ERROR(check(ebr + rel, lcount, next_logical));
        std::snprintf(hex, sizeof hex, "0x%02x", ltype);
        t.parts.push_back({next_logical++, (ebr + rel) * 512, lcount * 512, "mbr", hex, "", true});
      }
      uint64_t link = GetU32(b + 446 + 16 + 8);
      ebr = link ? start + link : 0;
    }
  }
  return t;
}

Result<std::vector<ByteRange>> GuestStructure(const DiskImage& img) {
  LM_ASSIGN_OR_RETURN(PartitionTable t, ReadPartitions(img, "disk"));
  std::vector<ByteRange> out = t.structure;
  constexpr uint64_t kSuper = 64 * 1024;  // ext, NTFS and FAT superblocks live here
  for (const Partition& p : t.parts) {
    if (p.number == 0) continue;  // a filesystem on the whole disk: the MBR range covers it
    out.push_back({p.start, std::min(kSuper, p.size), p.scheme == "gpt" ? "partition start (superblocks)"
                                                      : p.logical      ? "logical partition start (superblocks)"
                                                                       : "partition start (superblocks)"});
  }
  return out;
}

}  // namespace lm

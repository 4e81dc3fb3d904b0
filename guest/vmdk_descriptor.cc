#include "guest/vmdk_descriptor.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace lm {

namespace {
constexpr size_t kMaxExtents = 4096;
constexpr uint64_t kMaxSectors = uint64_t{1} << 41;  // 1 PiB, far above any VMDK (62 TB)

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::string Unquote(std::string v) {
  v = Trim(v);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

bool ParseU64(const std::string& s, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// `RW 2097152 FLAT "name with spaces-flat.vmdk" 0`
bool ParseExtent(const std::string& line, VmdkExtent* e) {
  size_t q1 = line.find('"');
  std::string head = q1 == std::string::npos ? line : line.substr(0, q1);
  std::vector<std::string> words;
  size_t i = 0;
  while (i < head.size()) {
    size_t b = head.find_first_not_of(" \t", i);
    if (b == std::string::npos) break;
    size_t end = head.find_first_of(" \t", b);
    words.push_back(head.substr(b, end == std::string::npos ? std::string::npos : end - b));
    i = end == std::string::npos ? head.size() : end;
  }
  if (words.size() != 3 || !ParseU64(words[1], &e->sectors)) return false;
  e->access = words[0];
  e->type = words[2];
  if (q1 == std::string::npos) return e->type == "ZERO";
  size_t q2 = line.find('"', q1 + 1);
  if (q2 == std::string::npos) return false;
  e->file = line.substr(q1 + 1, q2 - q1 - 1);
  std::string rest = Trim(line.substr(q2 + 1));
  return rest.empty() || ParseU64(rest, &e->offset);
}
}  // namespace

uint64_t VmdkDescriptor::sectors() const {
  uint64_t n = 0;
  for (const VmdkExtent& e : extents) n += e.sectors;
  return n;
}

bool LooksLikeVmdkDescriptor(const std::string& head) {
  return head.rfind("# Disk DescriptorFile", 0) == 0 || head.find("createType") != std::string::npos;
}

Result<VmdkDescriptor> ParseVmdkDescriptor(const std::string& text, const std::string& file) {
  if (text.size() > kMaxVmdkDescriptor) return Status::Corrupt(file + ": VMDK descriptor larger than 64 KiB");
  // qemu-img and ESXi pad a descriptor file to whole sectors with NULs.
  size_t nul = text.find('\0');
  if (nul != std::string::npos && text.find_first_not_of('\0', nul) != std::string::npos) {
    return Status::Corrupt(file + ": not a VMDK text descriptor");
  }
  const std::string body = text.substr(0, nul);
  VmdkDescriptor d;
  size_t pos = 0;
  int lineno = 0;
  uint64_t total = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    std::string line = Trim(body.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
    pos = nl == std::string::npos ? body.size() : nl + 1;
    lineno++;
    if (line.empty() || line[0] == '#') continue;
    auto bad = [&](const std::string& what) {
      return Status::Corrupt(fmt::format("{}: line {}: {}", file, lineno, what));
    };
    if (line.rfind("RW ", 0) == 0 || line.rfind("RDONLY ", 0) == 0 || line.rfind("NOACCESS ", 0) == 0) {
      VmdkExtent e;
      if (!ParseExtent(line, &e)) return bad("bad extent line");
      if (e.sectors == 0 || e.sectors > kMaxSectors || e.offset > kMaxSectors) return bad("extent size out of range");
      total += e.sectors;
      if (total > kMaxSectors) return bad("disk larger than 1 PiB");
      if (d.extents.size() >= kMaxExtents) return bad("more than 4096 extents");
      d.extents.push_back(std::move(e));
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos) return bad("neither an extent nor key=value");
    std::string key = Trim(line.substr(0, eq)), value = Unquote(line.substr(eq + 1));
    if (key == "createType") d.create_type = value;
    else if (key == "parentCID") d.has_parent = value != "ffffffff";
    else if (key == "ddb.adapterType") d.adapter_type = value;
  }
  if (d.extents.empty()) return Status::Corrupt(file + ": VMDK descriptor names no extent");
  return d;
}

std::string FormatVmdkDescriptor(uint64_t sectors, const std::string& extent_file, const std::string& adapter_type,
                                 uint32_t cid) {
  // ESXi's geometry for SCSI disks is 255 heads of 63 sectors; IDE's is 16 heads.
  bool ide = adapter_type == "ide";
  uint64_t heads = ide ? 16 : 255, per_track = 63;
  uint64_t cylinders = std::min<uint64_t>(sectors / (heads * per_track), ide ? 16383 : 65535);
  return fmt::format(
      "# Disk DescriptorFile\n"
      "# made by livemount: a view of a backed-up disk image, as VMware and QEMU read it\n"
      "version=1\nencoding=\"UTF-8\"\nCID={:08x}\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n"
      "# Extent description\nRW {} FLAT \"{}\" 0\n\n"
      "# The Disk Data Base\n#DDB\n\n"
      "ddb.virtualHWVersion = \"14\"\nddb.geometry.cylinders = \"{}\"\nddb.geometry.heads = \"{}\"\n"
      "ddb.geometry.sectors = \"{}\"\nddb.adapterType = \"{}\"\n",
      cid, sectors, extent_file, cylinders, heads, per_track, adapter_type);
}

}  // namespace lm

#include "guest/copy_views.h"

#include <fmt/format.h>

#include <cstring>
#include <map>

#include "base/bytes.h"
#include "guest/vmdk_descriptor.h"

namespace lm {

namespace {

constexpr uint64_t kMaxConfig = 1 << 20;  // .vmx and domain XML files read whole

bool EndsWith(const std::string& s, const char* suffix) {
  size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}
std::string Stem(const std::string& path) { return path.substr(0, path.rfind('.')); }
std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}
std::string BaseOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}
// dir + "/" + name, refusing names that leave the copy or are absolute.
bool JoinInCopy(const std::string& dir, const std::string& name, std::string* out) {
  if (name.empty() || name[0] == '/' || name.find('\0') != std::string::npos) return false;
  for (size_t b = 0; b <= name.size();) {
    size_t e = name.find('/', b);
    if (e == std::string::npos) e = name.size();
    std::string part = name.substr(b, e - b);
    if (part.empty() || part == "." || part == "..") return false;
    b = e + 1;
  }
  *out = dir.empty() ? name : dir + "/" + name;
  return true;
}
uint32_t Fnv1a(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}
// Names a generated descriptor or .vmx may hold in quotes.
bool Quotable(const std::string& s) { return s.find_first_of("\"\n\r|") == std::string::npos; }

// What the planner found out about the copy's disks.
class Planner {
 public:
  Planner(const std::vector<FileEntry>& files, const CopyFileReader& read, std::vector<std::string>* notes)
      : read_(read), notes_(notes) {
    for (const FileEntry& f : files) {
      if (f.type == FileType::kFile) regular_[f.path] = &f;
      taken_.insert({f.path, true});
    }
  }

  // Finds every disk, adding its views.
  void PlanDisks() {
    for (auto& [path, f] : regular_) {
      if (EndsWith(path, ".vmdk") && !IsExtentName(path)) PlanVmdk(*f);
      else if (EndsWith(path, ".qcow2")) PlanQcow2(*f);
    }
  }

  // A configuration's disk, named as the configuration names it, as a path in the copy.
  bool Locate(const std::string& config_dir, const std::string& name, std::string* path) const {
    if (!name.empty() && name[0] == '/') {  // the original host's path: find it by its name
      std::string base = BaseOf(name), found;
      for (auto& [p, f] : regular_) {
        if (BaseOf(p) != base) continue;
        if (!found.empty()) return false;  // two candidates: neither is sure
        found = p;
      }
      *path = found;
      return !found.empty();
    }
    return JoinInCopy(config_dir, name, path) && regular_.count(*path);
  }

  // The disk as `family` uses it: (path in the copy, format); false if it has no such form.
  bool DiskFor(const std::string& path, const std::string& family, std::string* file, std::string* format) {
    bool vmdk = EndsWith(path, ".vmdk"), qcow2 = EndsWith(path, ".qcow2");
    if (family == "libvirt") {
      if (!vmdk) *file = path, *format = qcow2 ? "qcow2" : "raw";  // libvirt's own forms
      else if (raw_of_.count(path)) *file = raw_of_[path], *format = "raw";
      else return false;
      return true;
    }
    if (vmdk) *file = path, *format = "vmdk";
    else if (vmdk_of_.count(path)) *file = vmdk_of_[path], *format = "vmdk";
    else if (!qcow2 && regular_.count(path) && AddDescriptor(path, path, regular_.at(path)->size)) *file = vmdk_of_[path], *format = "vmdk";
    else return false;
    return true;
  }

  bool Free(const std::string& name) const { return !taken_.count(name); }
  void Add(CopyView v) {
    taken_.insert({v.name, true});
    views_.push_back(std::move(v));
  }
  void Note(const std::string& n) {
    if (notes_) notes_->push_back(n);
  }
  Result<std::string> ReadWhole(const FileEntry& f, uint64_t max, const char* what) {
    if (f.size > max) return Status::Invalid(fmt::format("{}: larger than {} KiB; not a {}", f.path, max >> 10, what));
    return read_(f.path, 0, f.size);
  }
  const std::map<std::string, const FileEntry*>& regular() const { return regular_; }
  std::vector<CopyView> TakeViews() { return std::move(views_); }

 private:
  static bool IsExtentName(const std::string& p) {
    for (const char* s : {"-flat.vmdk", "-delta.vmdk", "-ctk.vmdk", "-sesparse.vmdk", "-rdm.vmdk", "-rdmp.vmdk"}) {
      if (EndsWith(p, s)) return true;
    }
    return false;
  }

  void PlanVmdk(const FileEntry& f) {
    std::string raw = Stem(f.path) + ".raw";
    if (!Free(raw)) return;
    auto head = read_(f.path, 0, std::min<uint64_t>(f.size, 512));
    if (!head.ok()) return Note(head.status().message());
    if (head->size() >= 16 && std::memcmp(head->data(), "KDMV", 4) == 0) {
      uint64_t sectors = GetU64(head->data() + 12);
      if (sectors == 0 || sectors > (uint64_t{1} << 41)) return Note(f.path + ": VMDK capacity out of range");
      Add({raw, ViewKind::kDecoded, sectors * 512, f.path, {}, ""});
      raw_of_[f.path] = raw;
      return;
    }
    if (!LooksLikeVmdkDescriptor(*head) || f.size > kMaxVmdkDescriptor) return;  // not a disk we know
    auto text = read_(f.path, 0, f.size);
    if (!text.ok()) return Note(text.status().message());
    auto d = ParseVmdkDescriptor(*text, f.path);
    if (!d.ok()) return Note(d.status().message());
    if (d->has_parent) return Note(f.path + ": a snapshot's delta disk; it has no raw view");
    CopyView v{raw, ViewKind::kExtents, 0, f.path, {}, ""};
    for (const VmdkExtent& e : d->extents) {
      uint64_t len = e.sectors * 512;
      if (e.type == "ZERO") {
        v.extents.push_back({"", 0, len});
      } else if (e.type == "FLAT" || e.type == "VMFS") {
        std::string path;
        if (!JoinInCopy(DirOf(f.path), e.file, &path) || !regular_.count(path)) {
          return Note(fmt::format("{}: extent \"{}\" is not in the backup copy", f.path, e.file));
        }
        if (e.offset * 512 + len > regular_.at(path)->size) {
          return Note(fmt::format("{}: extent \"{}\" ends beyond the file", f.path, e.file));
        }
        v.extents.push_back({path, e.offset * 512, len});
      } else {
        return Note(fmt::format("{}: {} extents have no raw view", f.path, e.type));
      }
      v.size += len;
    }
    Add(std::move(v));
    raw_of_[f.path] = raw;
  }

  void PlanQcow2(const FileEntry& f) {
    std::string raw = Stem(f.path) + ".raw";
    if (!Free(raw) || f.size < 112) return;
    auto head = read_(f.path, 0, 112);
    if (!head.ok()) return Note(head.status().message());
    if (std::memcmp(head->data(), "QFI\xfb", 4) != 0) return;
    if (GetBE64(head->data() + 8) != 0) return Note(f.path + ": a qcow2 with a backing file; it has no raw view");
    uint64_t size = GetBE64(head->data() + 24);
    if (size > (uint64_t{1} << 50)) return Note(f.path + ": qcow2 size out of range");
    Add({raw, ViewKind::kDecoded, size, f.path, {}, ""});
    raw_of_[f.path] = raw;
    AddDescriptor(f.path, raw, size);
  }

  // "<stem>.vmdk", a flat descriptor over `extent` (a raw view or a raw file) of `size`.
  bool AddDescriptor(const std::string& disk, const std::string& extent, uint64_t size) {
    std::string name = Stem(disk) + ".vmdk";
    if (vmdk_of_.count(disk)) return true;
    if (!Free(name) || size == 0) return false;
    if (size % 512) {
      Note(fmt::format("{}: {} bytes, not whole sectors; it has no VMDK descriptor", disk, size));
      return false;
    }
    if (DirOf(extent) != DirOf(name) || !Quotable(BaseOf(extent))) return false;
    std::string text = FormatVmdkDescriptor(size / 512, BaseOf(extent), "lsilogic", Fnv1a(disk));
    Add({name, ViewKind::kText, text.size(), disk, {}, text});
    vmdk_of_[disk] = name;
    return true;
  }

  const CopyFileReader& read_;
  std::vector<std::string>* notes_;
  std::map<std::string, const FileEntry*> regular_;
  std::map<std::string, bool> taken_;
  std::map<std::string, std::string> raw_of_, vmdk_of_;  // disk -> its raw view, its descriptor
  std::vector<CopyView> views_;
};

// The copy's configuration: its top-level .vmx, else its top-level libvirt domain.
struct FoundConfig {
  std::string path, family;  // "vmware" or "libvirt"
};
std::vector<FoundConfig> Configs(const Planner& p) {
  std::vector<FoundConfig> out;
  for (auto& [path, f] : p.regular()) {
    if (path.find('/') != std::string::npos) continue;
    if (EndsWith(path, ".vmx")) out.push_back({path, "vmware"});
    else if (EndsWith(path, ".xml") && !EndsWith(path, ".livemount.xml")) out.push_back({path, "libvirt"});
  }
  return out;
}

Result<VmConfig> ParseConfig(Planner& p, const FoundConfig& c) {
  const FileEntry& f = *p.regular().at(c.path);
  LM_ASSIGN_OR_RETURN(std::string text, p.ReadWhole(f, kMaxConfig, c.family == "vmware" ? ".vmx" : "domain"));
  return c.family == "vmware" ? ParseVmx(text, c.path) : ParseLibvirtXml(text, c.path);
}

// Points the configuration's disks at their `family` form; drops (with a note) those that
// have none or are not in the copy.
VmConfig MapDisks(Planner& p, VmConfig c, const std::string& config_path, const std::string& family) {
  std::vector<VmDisk> kept;
  for (VmDisk d : c.disks) {
    std::string path, file, format;
    if (!p.Locate(DirOf(config_path), d.file, &path)) {
      if (!d.cdrom) p.Note(fmt::format("{}: disk \"{}\" is not in the backup copy", config_path, d.file));
      continue;
    }
    if (!p.DiskFor(path, family, &file, &format)) {
      p.Note(fmt::format("{}: disk \"{}\" has no {} form", config_path, d.file, family));
      continue;
    }
    d.file = file;
    d.format = format;
    kept.push_back(d);
  }
  c.disks = std::move(kept);
  return c;
}

}  // namespace

std::vector<CopyView> PlanCopyViews(const std::vector<FileEntry>& files, const CopyFileReader& read,
                                    const CopyViewOptions& options, std::vector<std::string>* notes) {
  Planner p(files, read, notes);
  p.PlanDisks();
  for (const FoundConfig& found : Configs(p)) {
    // A .vmx gets a libvirt domain; a domain gets a .vmx.
    std::string other = found.family == "vmware" ? "libvirt" : "vmware";
    std::string name = Stem(found.path) + (other == "libvirt" ? ".livemount.xml" : ".vmx");
    if (!p.Free(name) || (other == "libvirt" && options.copy_dir.empty())) continue;
    auto config = ParseConfig(p, found);
    if (!config.ok()) {
      // A .xml that is not a domain is no configuration; anything else is worth a note.
      if (found.family == "vmware" || config.status().message().find("not <domain>") == std::string::npos) {
        p.Note(config.status().message());
      }
      continue;
    }
    VmConfig c = MapDisks(p, *config, found.path, other);
    if (c.disks.empty()) continue;
    std::string text = other == "libvirt" ? FormatLibvirtXml(c, options.copy_dir, options.domain_type) : FormatVmx(c);
    p.Add({name, ViewKind::kText, text.size(), found.path, {}, text});
  }
  return p.TakeViews();
}

Result<VmConfig> CopyVmConfig(const std::vector<FileEntry>& files, const CopyFileReader& read,
                              const std::string& family, const std::string& what) {
  if (family != "libvirt" && family != "vmware") return Status::Invalid("unknown hypervisor family " + family);
  std::vector<std::string> notes;
  Planner p(files, read, &notes);
  p.PlanDisks();
  auto configs = Configs(p);
  // The copy's own family first: a VMware copy is described by its .vmx.
  std::stable_sort(configs.begin(), configs.end(),
                   [](const FoundConfig& a, const FoundConfig& b) { return a.family == "vmware" && b.family != "vmware"; });
  std::string why = what + ": no .vmx or libvirt domain .xml at the top of the backup copy";
  for (const FoundConfig& found : configs) {
    auto config = ParseConfig(p, found);
    if (!config.ok()) {
      why = config.status().message();
      continue;
    }
    VmConfig c = MapDisks(p, *config, found.path, family);
    if (c.disks.empty()) {
      why = fmt::format("{}: no disk of {} in the backup copy{}", found.path, c.name,
                        notes.empty() ? "" : " (" + notes.back() + ")");
      continue;
    }
    return c;
  }
  return Status::Invalid(why);
}

}  // namespace lm

#include "profile/structural.h"

#include "guest/disk_image.h"
#include "guest/partitions.h"
#include "store/file_reader.h"

namespace lm {

Result<Profile> StructuralProfile(Repository& repo, const BackupRef& b, std::vector<std::string>* notes) {
  LM_ASSIGN_OR_RETURN(BackupManifest m, repo.LoadManifest(b));
  Profile p;
  p.vm = b.vm;
  uint64_t n = 0;
  // Configuration first: the hypervisor reads it before any disk.
  for (auto& f : m.files) {
    if (f.type == FileType::kFile && f.size > 0 && f.size < (1 << 20)) {
      p.entries.push_back({f.path, {{0, f.size}}, "structural", n++, "small file (configuration)"});
    }
  }
  for (auto& f : m.files) {
    if (f.type != FileType::kFile || f.size < (1 << 20)) continue;
    LM_ASSIGN_OR_RETURN(FileChunks fc, repo.LoadFileChunks(b, f));
    FileChunkReader reader(repo, fc);
    auto img = DiskImage::Open([&](uint64_t off, size_t len, char* out) { return reader.Read(off, len, out); },
                               f.size, f.path);
    if (!img.ok()) {
      notes->push_back(f.path + ": " + img.status().message());
      continue;
    }
    for (const ByteRange& r : img->metadata()) {
      p.entries.push_back({f.path, {{r.off, r.len}}, "structural", n++, r.what});
    }
    auto guest = GuestStructure(*img);
    if (!guest.ok()) {
      notes->push_back(f.path + ": " + guest.status().message());
      continue;
    }
    for (const ByteRange& g : *guest) {
      auto host = img->Map(g.off, g.len);
      if (!host.ok()) continue;
      ProfileEntry e{f.path, {}, "structural", n++, "guest " + g.what};
      for (auto& h : *host) e.ranges.push_back({h.off, h.len});
      if (!e.ranges.empty()) p.entries.push_back(std::move(e));
    }
  }
  return p;
}

}  // namespace lm

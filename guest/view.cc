#include "guest/view.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "store/file_reader.h"
#include "base/env.h"

namespace lm {

struct GuestView::Disk {
  std::string file;      // path in the backup copy, or the image path
  std::unique_ptr<FileChunkReader> repo_reader;
  UniqueFd fd;           // local images
  std::unique_ptr<DiskImage> img;
  PartitionTable table;
};

struct GuestView::Volume {
  GuestVolume info;
  Disk* disk = nullptr;
  std::unique_ptr<GuestDevice> dev;
  std::unique_ptr<GuestFs> fs;
  RangeSet open_reads;  // guest ranges the filesystem read to open itself
};

GuestView::~GuestView() {
  vols_.clear();  // filesystems close before their devices and disks go
}

namespace {

// Disk images: regular files of at least 1 MiB that are not a VM's other big files.
bool LooksLikeDisk(const std::string& path, uint64_t size) {
  if (size < (1 << 20)) return false;
  for (const char* ext : {".nvram", ".vmsn", ".vmss", ".log", ".vmem", ".xml", ".vmx"}) {
    size_t n = std::strlen(ext);
    if (path.size() > n && path.compare(path.size() - n, std::string::npos, ext) == 0) return false;
  }
  return true;
}

void WalkFiles(const std::string& root, const std::string& rel, std::vector<std::pair<std::string, uint64_t>>* out) {
  auto names = ListDir(rel.empty() ? root : JoinPath(root, rel));
  if (!names.ok()) return;
  for (auto& n : *names) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    struct stat st;
    if (::lstat(JoinPath(root, r).c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) WalkFiles(root, r, out);
    else if (S_ISREG(st.st_mode)) out->push_back({r, static_cast<uint64_t>(st.st_size)});
  }
}

}  // namespace

void GuestView::AddBroken(const std::string& disk_file, const std::string& error) {
  auto v = std::make_unique<Volume>();
  v->info.name = std::string("sd") + static_cast<char>('a' + std::min<size_t>(disks_.size(), 25));
  v->info.disk_file = disk_file;
  v->info.error = error;
  volumes_.push_back(v->info);
  vols_.push_back(std::move(v));
  disks_.push_back(std::make_unique<Disk>());  // keeps the lettering of later disks
}

Status GuestView::AddDisk(std::unique_ptr<Disk> d) {
  auto t = ReadPartitions(*d->img, label_ + ":" + d->file);
  char letter = static_cast<char>('a' + std::min<size_t>(disks_.size(), 25));
  std::string base = std::string("sd") + letter;
  if (!t.ok()) {
    AddBroken(d->file, t.status().message());
    return Status::Ok();
  }
  d->table = std::move(t).value();
  if (d->table.scheme == "none" && d->img->format() == ImageFormat::kRaw) {
    // A raw file with no partition table: a disk only if a filesystem is on it.
    GuestDevice probe(*d->img, d->table.parts[0], d->file);
    if (!OpenGuestFs(probe).ok()) return Status::Ok();
  }
  for (const Partition& p : d->table.parts) {
    auto v = std::make_unique<Volume>();
    v->disk = d.get();
    v->info.name = p.number ? base + std::to_string(p.number) : base;
    v->info.disk_file = d->file;
    v->info.part = p;
    std::string what = label_ + ":" + d->file + (p.number ? " partition " + std::to_string(p.number) : "");
    v->dev = std::make_unique<GuestDevice>(*d->img, p, what);
    auto fs = OpenGuestFs(*v->dev);
    if (fs.ok()) {
      v->fs = std::move(fs).value();
      v->info.fs_type = v->fs->type();
      v->info.label = v->fs->label();
    } else {
      v->info.error = fs.status().message();
    }
    v->open_reads = v->dev->TakeReads();
    volumes_.push_back(v->info);
    vols_.push_back(std::move(v));
  }
  disks_.push_back(std::move(d));
  return Status::Ok();
}

Result<std::unique_ptr<GuestView>> GuestView::OpenBackup(Repository& repo, const BackupRef& b) {
  std::unique_ptr<GuestView> g(new GuestView());
  g->label_ = b.Name();
  LM_ASSIGN_OR_RETURN(BackupManifest m, repo.LoadManifest(b));
  std::vector<const FileEntry*> disks;  // in path order, as OpenDirectory sees them
  for (const FileEntry& f : m.files) {
    if (f.type == FileType::kFile && LooksLikeDisk(f.path, f.size)) disks.push_back(&f);
  }
  std::sort(disks.begin(), disks.end(), [](auto* a, auto* b) { return a->path < b->path; });
  for (const FileEntry* fp : disks) {
    const FileEntry& f = *fp;
    LM_ASSIGN_OR_RETURN(FileChunks fc, repo.LoadFileChunks(b, f));
    auto d = std::make_unique<Disk>();
    d->file = f.path;
    d->repo_reader = std::make_unique<FileChunkReader>(repo, std::move(fc));
    FileChunkReader* r = d->repo_reader.get();
    auto img = DiskImage::Open([r](uint64_t off, size_t len, char* out) { return r->Read(off, len, out); }, f.size,
                               b.Name() + ":" + f.path);
    if (!img.ok()) {
      g->AddBroken(f.path, img.status().message());
      continue;
    }
    d->img = std::make_unique<DiskImage>(std::move(img).value());
    LM_RETURN_IF_ERROR(g->AddDisk(std::move(d)));
  }
  return g;
}

Status GuestView::AddLocalImage(Env* env, const std::string& path, const std::string& name) {
  auto d = std::make_unique<Disk>();
  d->file = name;
  LM_ASSIGN_OR_RETURN(d->fd, env->Open(path, O_RDONLY, 0));
  struct stat st;
  if (::fstat(d->fd.get(), &st) != 0) return Status::FromErrno(errno, path);
  int fd = d->fd.get();
  auto img = DiskImage::Open(
      [env, fd, path](uint64_t off, size_t len, char* out) { return env->PReadExact(fd, out, len, off, path); },
      static_cast<uint64_t>(st.st_size), path);
  if (!img.ok()) return img.status();
  d->img = std::make_unique<DiskImage>(std::move(img).value());
  return AddDisk(std::move(d));
}

Result<std::unique_ptr<GuestView>> GuestView::OpenImage(Env* env, const std::string& path) {
  std::unique_ptr<GuestView> g(new GuestView());
  g->label_ = path;
  LM_RETURN_IF_ERROR(g->AddLocalImage(env, path, path));
  if (g->vols_.empty()) return Status::Unsupported(path + ": no partition table or filesystem found");
  return g;
}

Result<std::unique_ptr<GuestView>> GuestView::OpenDirectory(Env* env, const std::string& vmdir) {
  std::unique_ptr<GuestView> g(new GuestView());
  g->label_ = vmdir;
  std::vector<std::pair<std::string, uint64_t>> files;
  WalkFiles(vmdir, "", &files);
  std::sort(files.begin(), files.end());
  for (auto& [rel, size] : files) {
    if (!LooksLikeDisk(rel, size)) continue;
    Status s = g->AddLocalImage(env, JoinPath(vmdir, rel), rel);
    if (!s.ok()) g->AddBroken(rel, s.message());
  }
  return g;
}

Result<std::pair<GuestView::Volume*, std::string>> GuestView::Split(const std::string& path) {
  if (path.empty() || path[0] != '/') return Status::Invalid("guest paths start with /: " + path);
  size_t slash = path.find('/', 1);
  std::string name = path.substr(1, slash == std::string::npos ? std::string::npos : slash - 1);
  std::string inner = slash == std::string::npos ? "/" : path.substr(slash);
  while (inner.size() > 1 && inner.back() == '/') inner.pop_back();
  for (auto& v : vols_) {
    if (v->info.name != name) continue;
    if (!v->fs) return Status::Unsupported(v->info.error);
    return std::make_pair(v.get(), inner);
  }
  return Status::NotFound(label_ + ": no volume " + name + " (the root lists them)");
}

Result<GuestEntry> GuestView::Stat(const std::string& path) {
  if (path == "/" || path.empty()) return GuestEntry{"/", 'd', 0, 0};
  LM_ASSIGN_OR_RETURN(auto vp, Split(path));
  if (vp.second == "/") return GuestEntry{vp.first->info.name, 'd', vp.first->info.part.size, 0};
  return vp.first->fs->Stat(vp.second);
}

Result<std::vector<GuestEntry>> GuestView::List(const std::string& path) {
  if (path == "/" || path.empty()) {
    std::vector<GuestEntry> out;
    for (auto& v : volumes_) out.push_back({v.name, 'd', v.part.size, 0});
    return out;
  }
  LM_ASSIGN_OR_RETURN(auto vp, Split(path));
  return vp.first->fs->List(vp.second);
}

Status GuestView::Read(const std::string& path, uint64_t off, size_t len, std::string* out) {
  LM_ASSIGN_OR_RETURN(auto vp, Split(path));
  return vp.first->fs->Read(vp.second, off, len, out);
}

void GuestView::AddGuestRanges(const Disk& d, const RangeSet& guest, RangeSet* host) {
  for (auto& [off, len] : guest.ranges()) {
    for (const ByteRange& m : d.img->MetadataFor(off, len)) host->Add(m.off, m.len);
    auto mapped = d.img->Map(off, len);
    if (!mapped.ok()) continue;  // reported when the bytes are read
    for (const ByteRange& r : *mapped) host->Add(r.off, r.len);
  }
}

Status GuestView::ResolveInto(Volume& v, const std::string& inner, std::vector<ResolvedFile>* out, int depth) {
  if (depth > 64) return Status::Invalid(label_ + ": directories nested deeper than 64 levels");
  v.fs->DropCaches();  // every walk reads, and so records, all it needs
  v.dev->TakeReads();
  LM_ASSIGN_OR_RETURN(GuestEntry e, v.fs->Stat(inner));
  std::string guest_path = "/" + v.info.name + (inner == "/" ? "" : inner);
  if (e.type == 'd') {
    LM_ASSIGN_OR_RETURN(auto children, v.fs->List(inner));
    ResolvedFile dir{guest_path + "/", v.info.disk_file, 0, 0, {}};
    RangeSet guest = v.dev->TakeReads();
    AddGuestRanges(*v.disk, guest, &dir.ranges);
    out->push_back(std::move(dir));  // the directory's own blocks: listing it needs them
    for (auto& c : children) {
      LM_RETURN_IF_ERROR(ResolveInto(v, (inner == "/" ? "" : inner) + "/" + c.name, out, depth + 1));
    }
    return Status::Ok();
  }
  ResolvedFile f{guest_path, v.info.disk_file, e.size, 0, {}};
  RangeSet data;
  if (e.type == 'f') {
    LM_ASSIGN_OR_RETURN(data, v.fs->DataRanges(inner));
  }
  RangeSet guest = v.dev->TakeReads();
  guest.Add(v.open_reads);
  for (const ByteRange& s : v.disk->table.structure) guest.Add(s.off, s.len);
  guest.Add(0, 512);
  for (auto& [off, len] : data.ranges()) {
    guest.Add(v.info.part.start + off, len);
    f.data_bytes += len;
  }
  AddGuestRanges(*v.disk, guest, &f.ranges);
  out->push_back(std::move(f));
  return Status::Ok();
}

Result<std::vector<ResolvedFile>> GuestView::Resolve(const std::string& path) {
  LM_ASSIGN_OR_RETURN(auto vp, Split(path));
  std::vector<ResolvedFile> out;
  LM_RETURN_IF_ERROR(ResolveInto(*vp.first, vp.second, &out, 0));
  return out;
}

Status SplitGuestSpec(const std::string& arg, std::string* spec, std::string* path) {
  auto colon = arg.find(':');
  *spec = arg.substr(0, colon);
  *path = colon == std::string::npos ? "/" : arg.substr(colon + 1);
  if (spec->empty()) return Status::Invalid("expected VM[@BACKUP][:/guest/path], got '" + arg + "'");
  if (path->empty()) *path = "/";
  if ((*path)[0] != '/') return Status::Invalid("guest paths start with /: '" + *path + "'");
  return Status::Ok();
}

}  // namespace lm

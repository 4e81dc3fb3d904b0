// NTFS through libntfs-3g, mounted read-only on a device whose operations read a
// GuestDevice, so every byte comes from the backed-up image and is recorded.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "guest/filesystem.h"

extern "C" {
#include <ntfs-3g/types.h>
#include <ntfs-3g/attrib.h>
#include <ntfs-3g/cache.h>
#include <ntfs-3g/device.h>
#include <ntfs-3g/dir.h>
#include <ntfs-3g/inode.h>
#include <ntfs-3g/logging.h>
#include <ntfs-3g/unistr.h>
#include <ntfs-3g/volume.h>
}
#undef min  // ntfs-3g's types.h defines these as macros
#undef max

namespace lm {

namespace {

struct DevState {
  GuestDevice* dev;
  s64 pos = 0;
};

DevState* St(ntfs_device* d) { return static_cast<DevState*>(d->d_private); }

int DevOpen(ntfs_device* d, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY) {
    errno = EROFS;
    return -1;
  }
  NDevSetOpen(d);
  NDevSetReadOnly(d);
  return 0;
}
int DevClose(ntfs_device* d) {
  NDevClearOpen(d);
  return 0;
}
s64 DevPread(ntfs_device* d, void* buf, s64 count, s64 off) {
  GuestDevice* g = St(d)->dev;
  if (off < 0 || count < 0) {
    errno = EINVAL;
    return -1;
  }
  uint64_t end = std::min<uint64_t>(g->size(), static_cast<uint64_t>(off) + static_cast<uint64_t>(count));
  if (static_cast<uint64_t>(off) >= end) return 0;
  if (!g->Read(static_cast<uint64_t>(off), end - off, static_cast<char*>(buf)).ok()) {
    errno = EIO;
    return -1;
  }
  return static_cast<s64>(end - off);
}
s64 DevRead(ntfs_device* d, void* buf, s64 count) {
  s64 n = DevPread(d, buf, count, St(d)->pos);
  if (n > 0) St(d)->pos += n;
  return n;
}
s64 DevSeek(ntfs_device* d, s64 off, int whence) {
  s64 base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? St(d)->pos : static_cast<s64>(St(d)->dev->size());
  St(d)->pos = base + off;
  return St(d)->pos;
}
s64 DevWrite(ntfs_device*, const void*, s64) {
  errno = EROFS;
  return -1;
}
s64 DevPwrite(ntfs_device*, const void*, s64, s64) {
  errno = EROFS;
  return -1;
}
int DevSync(ntfs_device*) { return 0; }
int DevStat(ntfs_device* d, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_mode = S_IFREG | 0444;
  st->st_size = static_cast<off_t>(St(d)->dev->size());
  return 0;
}
int DevIoctl(ntfs_device*, unsigned long, void*) {
  errno = ENOTTY;
  return -1;
}

ntfs_device_operations kOps = {DevOpen, DevClose, DevSeek, DevRead, DevWrite, DevPread, DevPwrite, DevSync, DevStat, DevIoctl};

std::mutex log_once;

std::string Name(const ntfschar* name, int len) {
  char* out = nullptr;
  if (ntfs_ucstombs(name, len, &out, 0) < 0 || !out) return "?";
  std::string s(out);
  free(out);
  return s;
}

class Ntfs : public GuestFs {
 public:
  Ntfs(GuestDevice& dev, ntfs_device* nd, ntfs_volume* vol, std::unique_ptr<DevState> st)
      : dev_(dev), nd_(nd), vol_(vol), st_(std::move(st)) {}
  ~Ntfs() override { ntfs_umount(vol_, FALSE); }  // frees the device too

  std::string type() const override { return "ntfs"; }
  std::string label() const override { return vol_->vol_name ? vol_->vol_name : ""; }

  void DropCaches() override {
    ntfs_free_lru_caches(vol_);
    ntfs_create_lru_caches(vol_);
  }

  Result<GuestEntry> Stat(const std::string& path) override {
    LM_ASSIGN_OR_RETURN(ntfs_inode * ni, Open(path));
    GuestEntry e = EntryOf(path == "/" ? "/" : path.substr(path.find_last_of('/') + 1), ni);
    ntfs_inode_close(ni);
    return e;
  }

  Result<std::vector<GuestEntry>> List(const std::string& dir) override {
    LM_ASSIGN_OR_RETURN(ntfs_inode * ni, Open(dir));
    struct Ctx {
      std::vector<std::pair<std::string, MFT_REF>> names;
    } ctx;
    auto fill = [](void* priv, const ntfschar* name, const int len, const int name_type, const s64,
                   const MFT_REF mref, const unsigned) -> int {
      auto* c = static_cast<Ctx*>(priv);
      if (name_type == FILE_NAME_DOS) return 0;          // the 8.3 alias of a long name
      if (MREF(mref) < FILE_first_user) return 0;        // $MFT, $LogFile, ... and "."
      std::string n = Name(name, len);
      if (n != "." && n != "..") c->names.push_back({n, mref});
      return 0;
    };
    s64 pos = 0;
    errno = 0;
    int rc = ntfs_readdir(ni, &pos, &ctx, fill);
    ntfs_inode_close(ni);
    if (rc) return Fail(dir);
    std::vector<GuestEntry> out;
    for (auto& [name, mref] : ctx.names) {
      ntfs_inode* child = ntfs_inode_open(vol_, mref);
      if (!child) return Fail(dir + "/" + name);
      out.push_back(EntryOf(name, child));
      ntfs_inode_close(child);
    }
    std::sort(out.begin(), out.end(), [](const GuestEntry& a, const GuestEntry& b) { return a.name < b.name; });
    return out;
  }

  Status Read(const std::string& path, uint64_t off, size_t len, std::string* out) override {
    LM_ASSIGN_OR_RETURN(ntfs_inode * ni, Open(path));
    ntfs_attr* na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
    if (!na) {
      ntfs_inode_close(ni);
      return Fail(path);
    }
    out->assign(len, '\0');
    size_t done = 0;
    s64 n = 1;
    while (done < len && n > 0) {
      n = ntfs_attr_pread(na, static_cast<s64>(off + done), static_cast<s64>(len - done), out->data() + done);
      if (n > 0) done += static_cast<size_t>(n);
    }
    ntfs_attr_close(na);
    ntfs_inode_close(ni);
    if (n < 0) return Fail(path);
    out->resize(done);
    return Status::Ok();
  }

  Result<RangeSet> DataRanges(const std::string& path) override {
    LM_ASSIGN_OR_RETURN(ntfs_inode * ni, Open(path));
    RangeSet out;
    ntfs_attr* na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
    if (na && NAttrNonResident(na)) {  // resident data lives in the MFT record, already read
      if (ntfs_attr_map_whole_runlist(na) != 0) {
        ntfs_attr_close(na);
        ntfs_inode_close(ni);
        return Fail(path);
      }
      uint64_t cs = vol_->cluster_size;
      for (runlist_element* rl = na->rl; rl && rl->length; rl++) {
        if (rl->lcn >= 0) out.Add(static_cast<uint64_t>(rl->lcn) * cs, static_cast<uint64_t>(rl->length) * cs);
      }
    }
    if (na) ntfs_attr_close(na);
    ntfs_inode_close(ni);
    return out;
  }

 private:
  Result<ntfs_inode*> Open(const std::string& path) {
    errno = 0;
    ntfs_inode* ni = ntfs_pathname_to_inode(vol_, nullptr, path.empty() ? "/" : path.c_str());
    if (!ni) {
      if (errno == ENOENT) return Status::NotFound(dev_.what() + ":" + path + ": no such file or directory");
      return Fail(path);
    }
    return ni;
  }
  GuestEntry EntryOf(const std::string& name, ntfs_inode* ni) {
    GuestEntry e;
    e.name = name;
    bool dir = ni->mrec && (ni->mrec->flags & MFT_RECORD_IS_DIRECTORY);
    bool link = ni->flags & FILE_ATTR_REPARSE_POINT;
    e.type = dir ? 'd' : link ? 'l' : 'f';
    e.mtime = static_cast<int64_t>((sle64_to_cpu(ni->last_data_change_time) - 116444736000000000LL) / 10000000);
    if (!dir) {
      ntfs_attr* na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
      if (na) {
        e.size = static_cast<uint64_t>(na->data_size);
        ntfs_attr_close(na);
      }
    }
    return e;
  }
  Status Fail(const std::string& what) {
    if (!dev_.last_error().ok()) return dev_.last_error();
    return Status::Corrupt(dev_.what() + ":" + what + ": " + std::strerror(errno ? errno : EIO));
  }

  GuestDevice& dev_;
  ntfs_device* nd_;
  ntfs_volume* vol_;
  std::unique_ptr<DevState> st_;
};

}  // namespace

Result<std::unique_ptr<GuestFs>> OpenNtfs(GuestDevice& dev) {
  {
    std::lock_guard lock(log_once);
    ntfs_log_set_handler(ntfs_log_handler_null);  // errors come back as one line each
  }
  auto st = std::make_unique<DevState>();
  st->dev = &dev;
  ntfs_device* nd = ntfs_device_alloc(dev.what().c_str(), 0, &kOps, st.get());
  if (!nd) return Status::IoError(dev.what() + ": cannot allocate an NTFS device");
  errno = 0;
  ntfs_volume* vol = ntfs_device_mount(nd, NTFS_MNT_RDONLY | NTFS_MNT_IGNORE_HIBERFILE);
  if (!vol) {
    int err = errno;
    ntfs_device_free(nd);
    if (!dev.last_error().ok()) return dev.last_error();
    return Status::Corrupt(dev.what() + ": NTFS volume cannot be opened: " + std::strerror(err ? err : EIO));
  }
  return std::unique_ptr<GuestFs>(new Ntfs(dev, nd, vol, std::move(st)));
}

}  // namespace lm

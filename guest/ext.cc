// ext2/3/4 through libext2fs, whose I/O goes through an io_manager of our own: the
// channel's private data is the GuestDevice, so every block libext2fs reads comes from the
// backed-up image (repository, read-cache or local file) and is recorded.
extern "C" {
#include <et/com_err.h>
}
#include <ext2fs/ext2fs.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "guest/filesystem.h"

namespace lm {

namespace {

// io_manager open() gets only a name: devices are registered under "livemount:<address>".
std::mutex registry_mu;
std::unordered_map<std::string, GuestDevice*> registry;

GuestDevice* Dev(io_channel ch) { return static_cast<GuestDevice*>(ch->private_data); }

errcode_t ChanOpen(const char* name, int flags, io_channel* out);
errcode_t ChanClose(io_channel ch) {
  if (--ch->refcount > 0) return 0;
  ext2fs_free_mem(&ch->name);
  ext2fs_free_mem(&ch);
  return 0;
}
errcode_t ChanSetBlksize(io_channel ch, int blksize) {
  ch->block_size = blksize;
  return 0;
}
errcode_t ChanRead64(io_channel ch, unsigned long long block, int count, void* data) {
  uint64_t len = count < 0 ? static_cast<uint64_t>(-count) : uint64_t(count) * ch->block_size;
  uint64_t off = block * ch->block_size;
  Status s = Dev(ch)->Read(off, len, static_cast<char*>(data));
  return s.ok() ? 0 : EXT2_ET_SHORT_READ;
}
errcode_t ChanRead(io_channel ch, unsigned long block, int count, void* data) {
  return ChanRead64(ch, block, count, data);
}
errcode_t ChanWrite(io_channel, unsigned long, int, const void*) { return EXT2_ET_RO_FILSYS; }
errcode_t ChanWrite64(io_channel, unsigned long long, int, const void*) { return EXT2_ET_RO_FILSYS; }
errcode_t ChanWriteByte(io_channel, unsigned long, int, const void*) { return EXT2_ET_RO_FILSYS; }
errcode_t ChanFlush(io_channel) { return 0; }
errcode_t ChanSetOption(io_channel, const char*, const char*) { return EXT2_ET_INVALID_ARGUMENT; }

struct_io_manager MakeManager() {
  struct_io_manager m{};
  m.magic = EXT2_ET_MAGIC_IO_MANAGER;
  m.name = "livemount guest device";
  m.open = ChanOpen;
  m.close = ChanClose;
  m.set_blksize = ChanSetBlksize;
  m.read_blk = ChanRead;
  m.write_blk = ChanWrite;
  m.flush = ChanFlush;
  m.write_byte = ChanWriteByte;
  m.set_option = ChanSetOption;
  m.read_blk64 = ChanRead64;
  m.write_blk64 = ChanWrite64;
  return m;
}
struct_io_manager manager = MakeManager();

errcode_t ChanOpen(const char* name, int flags, io_channel* out) {
  if (flags & IO_FLAG_RW) return EXT2_ET_RO_FILSYS;
  GuestDevice* dev;
  {
    std::lock_guard lock(registry_mu);
    auto it = registry.find(name);
    if (it == registry.end()) return EXT2_ET_BAD_DEVICE_NAME;
    dev = it->second;
  }
  io_channel ch;
  errcode_t rc = ext2fs_get_memzero(sizeof(*ch), &ch);
  if (rc) return rc;
  ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
  ch->manager = &manager;
  rc = ext2fs_get_mem(std::strlen(name) + 1, &ch->name);
  if (rc) {
    ext2fs_free_mem(&ch);
    return rc;
  }
  std::strcpy(ch->name, name);
  ch->block_size = 1024;
  ch->refcount = 1;
  ch->private_data = dev;
  *out = ch;
  return 0;
}

std::string Why(errcode_t rc) { return error_message(rc); }

char TypeOf(const ext2_inode& in) {
  return LINUX_S_ISDIR(in.i_mode) ? 'd' : LINUX_S_ISREG(in.i_mode) ? 'f' : LINUX_S_ISLNK(in.i_mode) ? 'l' : 'o';
}

class ExtFs : public GuestFs {
 public:
  ExtFs(GuestDevice& dev, ext2_filsys fs, std::string key) : dev_(dev), fs_(fs), key_(std::move(key)) {}
  ~ExtFs() override {
    ext2fs_close_free(&fs_);
    std::lock_guard lock(registry_mu);
    registry.erase(key_);
  }

  std::string type() const override {
    if (ext2fs_has_feature_extents(fs_->super) || ext2fs_has_feature_64bit(fs_->super)) return "ext4";
    return ext2fs_has_feature_journal(fs_->super) ? "ext3" : "ext2";
  }
  std::string label() const override {
    const char* name = reinterpret_cast<const char*>(fs_->super->s_volume_name);
    return std::string(name, strnlen(name, sizeof fs_->super->s_volume_name));
  }

  void DropCaches() override { ext2fs_flush_icache(fs_); }

  Result<GuestEntry> Stat(const std::string& path) override {
    LM_ASSIGN_OR_RETURN(ext2_ino_t ino, Lookup(path));
    ext2_inode in;
    LM_RETURN_IF_ERROR(ReadInode(ino, &in));
    auto slash = path.find_last_of('/');
    return Entry(path == "/" ? "/" : path.substr(slash + 1), in);
  }

  Result<std::vector<GuestEntry>> List(const std::string& dir) override {
    LM_ASSIGN_OR_RETURN(ext2_ino_t ino, Lookup(dir));
    struct Ctx {
      std::vector<std::pair<std::string, ext2_ino_t>> names;
    } ctx;
    auto cb = [](ext2_ino_t, int, ext2_dir_entry* d, int, int, char*, void* priv) -> int {
      auto* c = static_cast<Ctx*>(priv);
      std::string name(d->name, ext2fs_dirent_name_len(d));
      if (name != "." && name != ".." && d->inode) c->names.push_back({name, d->inode});
      return 0;
    };
    errcode_t rc = ext2fs_dir_iterate2(fs_, ino, 0, nullptr, cb, &ctx);
    if (rc) return Fail(dir, rc);
    std::vector<GuestEntry> out;
    for (auto& [name, child] : ctx.names) {
      ext2_inode in;
      LM_RETURN_IF_ERROR(ReadInode(child, &in));
      out.push_back(Entry(name, in));
    }
    std::sort(out.begin(), out.end(), [](const GuestEntry& a, const GuestEntry& b) { return a.name < b.name; });
    return out;
  }

  Status Read(const std::string& path, uint64_t off, size_t len, std::string* out) override {
    LM_ASSIGN_OR_RETURN(ext2_ino_t ino, Lookup(path));
    ext2_file_t f;
    errcode_t rc = ext2fs_file_open(fs_, ino, 0, &f);
    if (rc) return Fail(path, rc);
    out->assign(len, '\0');
    unsigned int got = 0;
    rc = ext2fs_file_llseek(f, off, EXT2_SEEK_SET, nullptr);
    size_t done = 0;
    while (!rc && done < len) {
      unsigned int want = static_cast<unsigned int>(std::min<size_t>(len - done, 1 << 20));
      rc = ext2fs_file_read(f, out->data() + done, want, &got);
      if (!rc && got == 0) break;
      done += got;
    }
    ext2fs_file_close(f);
    if (rc) return Fail(path, rc);
    out->resize(done);
    return Status::Ok();
  }

  Result<RangeSet> DataRanges(const std::string& path) override {
    LM_ASSIGN_OR_RETURN(ext2_ino_t ino, Lookup(path));
    struct Ctx {
      RangeSet ranges;
      uint64_t block_size;
    } ctx{{}, fs_->blocksize};
    auto cb = [](ext2_filsys, blk64_t* block, e2_blkcnt_t, blk64_t, int, void* priv) -> int {
      auto* c = static_cast<Ctx*>(priv);
      c->ranges.Add(*block * c->block_size, c->block_size);
      return 0;
    };
    ext2_inode in;
    LM_RETURN_IF_ERROR(ReadInode(ino, &in));
    if (!ext2fs_inode_has_valid_blocks2(fs_, &in)) return ctx.ranges;  // inline data or a fast symlink
    errcode_t rc = ext2fs_block_iterate3(fs_, ino, BLOCK_FLAG_READ_ONLY | BLOCK_FLAG_DATA_ONLY, nullptr, cb, &ctx);
    if (rc) return Fail(path, rc);
    return ctx.ranges;
  }

 private:
  GuestEntry Entry(const std::string& name, const ext2_inode& in) const {
    return {name, TypeOf(in), EXT2_I_SIZE(&in), static_cast<int64_t>(in.i_mtime)};
  }
  Result<ext2_ino_t> Lookup(const std::string& path) {
    if (path == "/" || path.empty()) return ext2_ino_t{EXT2_ROOT_INO};
    ext2_ino_t ino = 0;
    errcode_t rc = ext2fs_namei(fs_, EXT2_ROOT_INO, EXT2_ROOT_INO, path.c_str(), &ino);
    if (rc == EXT2_ET_FILE_NOT_FOUND) return Status::NotFound(dev_.what() + ":" + path + ": no such file or directory");
    if (rc) return Fail(path, rc);
    return ino;
  }
  Status ReadInode(ext2_ino_t ino, ext2_inode* in) {
    errcode_t rc = ext2fs_read_inode(fs_, ino, in);
    return rc ? Fail("inode " + std::to_string(ino), rc) : Status::Ok();
  }
  Status Fail(const std::string& what, errcode_t rc) {
    if (!dev_.last_error().ok()) return dev_.last_error();  // the read below failed (EIO, damage)
    return Status::Corrupt(dev_.what() + ":" + what + ": " + Why(rc));
  }

  GuestDevice& dev_;
  ext2_filsys fs_;
  std::string key_;
};

}  // namespace

Result<std::unique_ptr<GuestFs>> OpenExtFs(GuestDevice& dev) {
  std::string key = "livemount:" + std::to_string(reinterpret_cast<uintptr_t>(&dev));
  {
    std::lock_guard lock(registry_mu);
    registry[key] = &dev;
  }
  ext2_filsys fs = nullptr;
  // Read-only, and without replaying the journal: the backup is what it is.
  errcode_t rc = ext2fs_open2(key.c_str(), nullptr, EXT2_FLAG_64BITS | EXT2_FLAG_IGNORE_CSUM_ERRORS, 0, 0,
                              &manager, &fs);
  if (rc) {
    std::lock_guard lock(registry_mu);
    registry.erase(key);
    if (!dev.last_error().ok()) return dev.last_error();
    return Status::Corrupt(dev.what() + ": ext filesystem cannot be opened: " + Why(rc));
  }
  return std::unique_ptr<GuestFs>(new ExtFs(dev, fs, key));
}

}  // namespace lm

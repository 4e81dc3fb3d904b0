// The only file that includes fuse_lowlevel.h. Callbacks translate to LiveFs calls and map
// Status to errno (errno_map.h); every callback catches everything, so no exception
// reaches libfuse.
#define FUSE_USE_VERSION 312
#include "fs/fuse_ops.h"

#include <fuse_lowlevel.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "fs/errno_map.h"
#include "base/log.h"

namespace lm {

namespace {

struct Context {
  LiveFs* fs;
  FuseOptions options;
};

Context* Ctx(fuse_req_t req) { return static_cast<Context*>(fuse_req_userdata(req)); }

// Directories that change (root, VM dirs) are revalidated each second; backup contents
// are immutable.
double TimeoutFor(const Node& n) {
  return (n.kind == NodeKind::kRoot || n.kind == NodeKind::kVmDir || n.kind == NodeKind::kLatestLink ||
          n.backup)  // backup contents change through the overlay
             ? 1.0
             : 3600.0;
}

// Replies with a snapshot of the node's attributes.
void ReplyAttr(fuse_req_t req, LiveFs* fs, const Node& n) {
  struct stat st = fs->Stat(n);
  fuse_reply_attr(req, &st, TimeoutFor(n));
}

template <typename F>
void Guard(fuse_req_t req, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    LogError(std::string("internal error in a FUSE callback: ") + e.what());
    fuse_reply_err(req, EIO);
  } catch (...) {
    LogError("internal error in a FUSE callback");
    fuse_reply_err(req, EIO);
  }
}

fuse_entry_param EntryParam(fuse_req_t req, const Node& n) {
  fuse_entry_param e{};
  e.attr = Ctx(req)->fs->Stat(n);
  e.ino = e.attr.st_ino;
  e.generation = n.generation;
  e.attr_timeout = e.entry_timeout = TimeoutFor(n);
  return e;
}

void ReplyEntry(fuse_req_t req, const Node& n) {
  fuse_entry_param e = EntryParam(req, n);
  fuse_reply_entry(req, &e);
}

void OpInit(void* userdata, fuse_conn_info* conn) {
  conn->max_readahead = std::min<unsigned>(conn->max_readahead, 1u << 20);
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  conn->want &= ~FUSE_CAP_SPLICE_READ;  // hits are verified in memory, then copied
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  // NFS export: the kernel may look up "." and ".." in nodes this daemon never saw (a
  // file handle from before a restart); Namespace::Resolve answers those.
  if (conn->capable & FUSE_CAP_EXPORT_SUPPORT) conn->want |= FUSE_CAP_EXPORT_SUPPORT;
  LogInfo("FUSE session started: max_read " + std::to_string(conn->max_read) + ", max_write " +
          std::to_string(conn->max_write) + ", max_readahead " + std::to_string(conn->max_readahead));
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, [&] {
    LiveFs& ns = *Ctx(req)->fs;
    bool self = std::strcmp(name, ".") == 0, up = std::strcmp(name, "..") == 0;
    if (self || up) {  // only sent to filesystems with export support
      auto n = ns.Resolve(parent);
      if (n.ok() && up) n = ns.Resolve((*n)->parent);
      if (!n.ok()) return (void)fuse_reply_err(req, ESTALE);
      return ReplyEntry(req, **n);
    }
    auto dir = ns.Resolve(parent);  // a directory handle from before a restart
    if (!dir.ok()) return (void)fuse_reply_err(req, ESTALE);
    auto n = ns.Lookup(parent, name);
    if (!n.ok()) return (void)fuse_reply_err(req, ToErrno(n.status()));
    ReplyEntry(req, **n);
  });
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Guard(req, [&] {
    auto n = Ctx(req)->fs->Get(ino);
    if (!n.ok()) return (void)fuse_reply_err(req, ENOENT);
    ReplyAttr(req, Ctx(req)->fs, **n);
  });
}

void OpReadlink(fuse_req_t req, fuse_ino_t ino) {
  Guard(req, [&] {
    auto n = Ctx(req)->fs->Get(ino);
    if (!n.ok()) return (void)fuse_reply_err(req, ENOENT);
    if (!S_ISLNK((*n)->attr.st_mode)) return (void)fuse_reply_err(req, EINVAL);
    fuse_reply_readlink(req, (*n)->link_target.c_str());
  });
}

void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  Guard(req, [&] {
    LiveFs* fs = Ctx(req)->fs;
    auto list = fs->List(ino);
    if (!list.ok()) return (void)fuse_reply_err(req, ToErrno(list.status()));
    auto self = fs->Get(ino);
    if (!self.ok()) return (void)fuse_reply_err(req, ENOENT);
    std::vector<char> buf(size);
    size_t used = 0;
    size_t total = list->size() + 2;
    for (size_t i = static_cast<size_t>(off); i < total; i++) {
      struct stat st {};
      const char* name;
      if (i == 0) {
        name = ".";
        st = fs->Stat(**self);
      } else if (i == 1) {
        name = "..";
        st.st_ino = (*self)->parent;
        st.st_mode = S_IFDIR;
      } else {
        name = (*list)[i - 2].first.c_str();
        st = fs->Stat(*(*list)[i - 2].second);
      }
      size_t need = fuse_add_direntry(req, buf.data() + used, size - used, name, &st,
                                      static_cast<off_t>(i + 1));
      if (need > size - used) break;
      used += need;
    }
    fuse_reply_buf(req, buf.data(), used);
  });
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guard(req, [&] {
    LiveFs* fs = Ctx(req)->fs;
    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
      auto n = fs->Get(ino);
      if (!fs->writable() || !n.ok() || !(*n)->backup) return (void)fuse_reply_err(req, EROFS);
    }
    if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY) {
      LiveFs::AttrChange zero;  // atomic O_TRUNC: the kernel leaves the truncate to us
      zero.size = true;
      Status t = fs->SetAttr(ino, zero);
      if (!t.ok()) return (void)fuse_reply_err(req, ToErrno(t));
    }
    auto f = fs->Open(ino);
    if (!f.ok()) {
      LogError("open inode " + std::to_string(ino) + ": " + f.status().message());
      return (void)fuse_reply_err(req, ToErrno(f.status()));
    }
    fi->fh = reinterpret_cast<uint64_t>(f->release());
    fi->keep_cache = 1;  // backup contents never change under the page cache
    if (fuse_reply_open(req, fi) != 0) delete reinterpret_cast<OpenFile*>(fi->fh);
  });
}

void OpRead(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  Guard(req, [&] {
    auto* f = reinterpret_cast<OpenFile*>(fi->fh);
    // Page-aligned: the kernel's copies into it (the cache file's read) and out of it (the
    // reply) run on whole pages.
    thread_local std::unique_ptr<char, decltype(&std::free)> buf(nullptr, &std::free);
    thread_local size_t cap = 0;
    if (cap < size) {
      size_t want = (size + 4095) & ~size_t{4095};
      buf.reset(static_cast<char*>(std::aligned_alloc(4096, want)));
      cap = buf ? want : 0;
      if (!buf) return (void)fuse_reply_err(req, ENOMEM);
    }
    size_t got = 0;
    Status s = Ctx(req)->fs->ReadInto(*f, static_cast<uint64_t>(off), size, buf.get(), &got);
    if (!s.ok()) return (void)fuse_reply_err(req, ToErrno(s));
    fuse_reply_buf(req, buf.get(), got);
  });
}

void OpRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Guard(req, [&] {
    Ctx(req)->fs->Release(std::unique_ptr<OpenFile>(reinterpret_cast<OpenFile*>(fi->fh)));
    fuse_reply_err(req, 0);
  });
}

void OpWrite(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off,
             fuse_file_info* fi) {
  Guard(req, [&] {
    auto* f = reinterpret_cast<OpenFile*>(fi->fh);
    Status s = Ctx(req)->fs->Write(*f, static_cast<uint64_t>(off), buf, size);
    if (!s.ok()) {
      LogError("write " + f->what + ": " + s.message());
      return (void)fuse_reply_err(req, ToErrno(s));
    }
    fuse_reply_write(req, size);
  });
}

void OpFsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  Guard(req, [&] {
    auto n = Ctx(req)->fs->Get(ino);
    if (!n.ok()) return (void)fuse_reply_err(req, ENOENT);
    Status s = Ctx(req)->fs->Fsync(**n);
    if (!s.ok()) LogError("fsync: " + s.message());
    fuse_reply_err(req, ToErrno(s));
  });
}

void OpFsyncdir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  fuse_reply_err(req, 0);  // namespace changes are durable when they return
}

void OpFlush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void ReplyNewNode(fuse_req_t req, const Result<std::shared_ptr<Node>>& n) {
  if (!n.ok()) return (void)fuse_reply_err(req, ToErrno(n.status()));
  ReplyEntry(req, **n);
}

void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Guard(req, [&] {
    const fuse_ctx* c = fuse_req_ctx(req);
    ReplyNewNode(req, Ctx(req)->fs->Create(parent, name, NodeKind::kDir, mode & ~c->umask,
                                                c->uid, c->gid));
  });
}

void OpMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  Guard(req, [&] {
    const fuse_ctx* c = fuse_req_ctx(req);
    // FIFOs, sockets and device nodes are entries of the overlay; the kernel serves FIFOs
    // and sockets itself, and the mount is nodev, so a device node opens nothing.
    NodeKind kind = S_ISREG(mode) ? NodeKind::kFile : NodeKind::kSpecial;
    mode_t bits = (mode & S_IFMT) | ((mode & 07777) & ~c->umask);
    ReplyNewNode(req, Ctx(req)->fs->Create(parent, name, kind, bits, c->uid, c->gid, "", rdev));
  });
}

void OpSymlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  Guard(req, [&] {
    const fuse_ctx* c = fuse_req_ctx(req);
    ReplyNewNode(req, Ctx(req)->fs->Create(parent, name, NodeKind::kSymlink, 0777, c->uid,
                                                c->gid, target));
  });
}

void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  Guard(req, [&] {
    LiveFs* fs = Ctx(req)->fs;
    const fuse_ctx* c = fuse_req_ctx(req);
    auto n = fs->Create(parent, name, NodeKind::kFile, mode & ~c->umask, c->uid, c->gid);
    if (!n.ok()) return (void)fuse_reply_err(req, ToErrno(n.status()));
    auto f = fs->Open((*n)->ino);
    if (!f.ok()) return (void)fuse_reply_err(req, ToErrno(f.status()));
    fi->fh = reinterpret_cast<uint64_t>(f->release());
    fuse_entry_param e = EntryParam(req, **n);
    if (fuse_reply_create(req, &e, fi) != 0) {
      fs->Release(std::unique_ptr<OpenFile>(reinterpret_cast<OpenFile*>(fi->fh)));
    }
  });
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, [&] { fuse_reply_err(req, ToErrno(Ctx(req)->fs->Remove(parent, name, false))); });
}

void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, [&] { fuse_reply_err(req, ToErrno(Ctx(req)->fs->Remove(parent, name, true))); });
}

void OpRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
              const char* newname, unsigned int flags) {
  Guard(req, [&] {
    fuse_reply_err(req, ToErrno(Ctx(req)->fs->Rename(parent, name, newparent, newname, flags)));
  });
}

void OpLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  Guard(req, [&] {
    auto n = Ctx(req)->fs->Link(ino, newparent, newname);
    if (!n.ok() && n.status().code() == Code::kReadOnly) {
      auto node = Ctx(req)->fs->Get(ino);  // a directory: EPERM, as link(2) says
      if (node.ok() && S_ISDIR((*node)->attr.st_mode)) return (void)fuse_reply_err(req, EPERM);
    }
    ReplyNewNode(req, n);
  });
}

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  Guard(req, [&] {
    LiveFs* fs = Ctx(req)->fs;
    LiveFs::AttrChange c;
    c.values = *attr;
    c.mode = to_set & FUSE_SET_ATTR_MODE;
    c.uid = to_set & FUSE_SET_ATTR_UID;
    c.gid = to_set & FUSE_SET_ATTR_GID;
    c.size = to_set & FUSE_SET_ATTR_SIZE;
    c.atime = to_set & FUSE_SET_ATTR_ATIME;
    c.atime_now = to_set & FUSE_SET_ATTR_ATIME_NOW;
    c.mtime = to_set & FUSE_SET_ATTR_MTIME;
    c.mtime_now = to_set & FUSE_SET_ATTR_MTIME_NOW;
    Status s = fs->SetAttr(ino, c);
    if (!s.ok()) return (void)fuse_reply_err(req, ToErrno(s));
    auto n = fs->Get(ino);
    if (!n.ok()) return (void)fuse_reply_err(req, ENOENT);
    ReplyAttr(req, fs, **n);
  });
}

void OpStatfs(fuse_req_t req, fuse_ino_t) {
  Guard(req, [&] {
    struct statvfs st {};
    const std::string& state = Ctx(req)->fs->options().state_dir;
    if (::statvfs(state.empty() ? "/" : state.c_str(), &st) != 0) {
      return (void)fuse_reply_err(req, errno);
    }
    st.f_namemax = 255;
    fuse_reply_statfs(req, &st);
  });
}

const char* kControlXattr = "user.livemount.control";
const char* kPidXattr = "user.livemount.pid";

void ReplyXattr(fuse_req_t req, const std::string& value, size_t size) {
  if (size == 0) return (void)fuse_reply_xattr(req, value.size());
  if (size < value.size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, value.data(), value.size());
}

void OpGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Guard(req, [&] {
    if (ino == FUSE_ROOT_ID && std::strcmp(name, kControlXattr) == 0) {
      return ReplyXattr(req, Ctx(req)->options.control_name, size);
    }
    if (ino == FUSE_ROOT_ID && std::strcmp(name, kPidXattr) == 0) {
      return ReplyXattr(req, std::to_string(::getpid()), size);
    }
    auto v = Ctx(req)->fs->GetXattr(ino, name);
    if (!v.ok()) return (void)fuse_reply_err(req, ToErrno(v.status()));
    ReplyXattr(req, *v, size);
  });
}

void OpListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Guard(req, [&] {
    std::string names;
    if (ino == FUSE_ROOT_ID) {
      names.append(kControlXattr).push_back('\0');
      names.append(kPidXattr).push_back('\0');
    }
    auto list = Ctx(req)->fs->ListXattr(ino);
    if (!list.ok()) return (void)fuse_reply_err(req, ToErrno(list.status()));
    for (auto& n : *list) names.append(n).push_back('\0');
    ReplyXattr(req, names, size);
  });
}

void OpSetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  Guard(req, [&] {
    Status s = Ctx(req)->fs->SetXattr(ino, name, std::string(value, size), flags);
    if (!s.ok() && s.code() != Code::kNoAttribute && s.code() != Code::kExists) LogDebug("setxattr: " + s.message());
    fuse_reply_err(req, ToErrno(s));
  });
}

void OpRemovexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Guard(req, [&] { fuse_reply_err(req, ToErrno(Ctx(req)->fs->RemoveXattr(ino, name))); });
}

void OpFallocate(fuse_req_t req, fuse_ino_t, int mode, off_t off, off_t len, fuse_file_info* fi) {
  Guard(req, [&] {
    auto* f = reinterpret_cast<OpenFile*>(fi->fh);
    Status s = Ctx(req)->fs->Fallocate(*f, mode, static_cast<uint64_t>(off), static_cast<uint64_t>(len));
    if (!s.ok() && s.code() != Code::kUnsupported) LogError("fallocate " + f->what + ": " + s.message());
    fuse_reply_err(req, ToErrno(s));
  });
}

const fuse_lowlevel_ops kOps = [] {
  fuse_lowlevel_ops ops{};
  ops.init = OpInit;
  ops.lookup = OpLookup;
  ops.getattr = OpGetattr;
  ops.readlink = OpReadlink;
  ops.readdir = OpReaddir;
  ops.open = OpOpen;
  ops.read = OpRead;
  ops.release = OpRelease;
  ops.statfs = OpStatfs;
  ops.write = OpWrite;
  ops.fsync = OpFsync;
  ops.fsyncdir = OpFsyncdir;
  ops.flush = OpFlush;
  ops.mkdir = OpMkdir;
  ops.mknod = OpMknod;
  ops.symlink = OpSymlink;
  ops.create = OpCreate;
  ops.unlink = OpUnlink;
  ops.rmdir = OpRmdir;
  ops.rename = OpRename;
  ops.link = OpLink;
  ops.setattr = OpSetattr;
  ops.getxattr = OpGetxattr;
  ops.listxattr = OpListxattr;
  ops.setxattr = OpSetxattr;
  ops.removexattr = OpRemovexattr;
  ops.fallocate = OpFallocate;
  return ops;
}();

}  // namespace

Result<std::unique_ptr<FuseMount>> FuseMount::Mount(LiveFs& fs, const FuseOptions& o) {
  // nodev, nosuid: device nodes and set-id bits created in an overlay stay inert.
  std::vector<std::string> argv = {"livemount", "-o", "fsname=livemount,subtype=livemount,nodev,nosuid"};
  if (!fs.writable()) argv.back() += ",ro";
  if (o.allow_other) argv.back() += ",allow_other,default_permissions";
  else argv.back() += ",default_permissions";
  if (o.debug) argv.push_back("-d");
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(cargv.size()), cargv.data());
  std::unique_ptr<FuseMount> m(new FuseMount());
  auto* ctx = new Context{&fs, o};
  m->ctx_ = ctx;
  m->max_threads_ = o.max_threads;
  m->se_ = fuse_session_new(&args, &kOps, sizeof kOps, ctx);
  if (!m->se_) return Status::IoError("cannot create the FUSE session (is /dev/fuse available?)");
  if (fuse_session_mount(m->se_, o.mountpoint.c_str()) != 0) {
    return Status::IoError("cannot mount FUSE at " + o.mountpoint +
                           " (is it an existing directory, and not already mounted?)");
  }
  m->mounted_ = true;
  return m;
}

Status FuseMount::Run() {
  if (fuse_set_signal_handlers(se_) == 0) signals_ = true;
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, max_threads_);
  int rc = fuse_session_loop_mt(se_, cfg);
  fuse_loop_cfg_destroy(cfg);
  if (rc < 0) return Status::IoError("FUSE loop failed: " + std::string(std::strerror(-rc)));
  return Status::Ok();
}

void FuseMount::InvalidateEntry(Ino parent, const std::string& name) {
  if (se_) fuse_lowlevel_notify_inval_entry(se_, parent, name.c_str(), name.size());
}

void FuseMount::Abort() {
  if (!se_ || !mounted_) return;
  fuse_session_exit(se_);
  fuse_session_unmount(se_);  // the loop's next read fails, and it returns
  mounted_ = false;
}

void FuseMount::Exit() {
  if (se_) fuse_session_exit(se_);
}

FuseMount::~FuseMount() {
  if (se_) {
    if (signals_) fuse_remove_signal_handlers(se_);
    if (mounted_) fuse_session_unmount(se_);
    fuse_session_destroy(se_);
  }
  delete static_cast<Context*>(ctx_);
}

}  // namespace lm

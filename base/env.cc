#include "base/env.h"

#include "base/json_bytes.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>  // renameat2
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace lm {

Status Status::FromErrno(int err, const std::string& what) {
  std::string m = what + ": " + std::strerror(err);
  if (err == ENOENT) return NotFound(m);
  if (err == ENOSPC || err == EDQUOT) return NoSpace(m);
  if (err == EEXIST) return Exists(m);
  if (err == EINVAL) return Invalid(m);
  return IoError(m);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) reset(o.release());
  return *this;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Env* Env::Default() {
  static Env env;
  return &env;
}

Result<UniqueFd> Env::Open(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return Status::FromErrno(errno, path);
  return UniqueFd(fd);
}

Status Env::PRead(int fd, void* buf, size_t n, uint64_t off, size_t* got,
                  const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, static_cast<char*>(buf) + done, n - done, off + done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read " + path);
    }
    if (r == 0) break;
    done += r;
  }
  *got = done;
  return Status::Ok();
}

Status Env::PReadExact(int fd, void* buf, size_t n, uint64_t off, const std::string& path) {
  size_t got = 0;
  LM_RETURN_IF_ERROR(PRead(fd, buf, n, off, &got, path));
  if (got != n) {
    return Status::Corrupt(path + ": truncated (wanted " + std::to_string(n) + " bytes at offset " +
                           std::to_string(off) + ", file ends after " + std::to_string(got) + ")");
  }
  return Status::Ok();
}

Status Env::PWrite(int fd, const void* buf, size_t n, uint64_t off, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pwrite(fd, static_cast<const char*>(buf) + done, n - done, off + done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + path);
    }
    done += r;
  }
  return Status::Ok();
}

Status Env::Fsync(int fd, const std::string& path) {
  if (::fsync(fd) != 0) return Status::FromErrno(errno, "fsync " + path);
  return Status::Ok();
}

Status Env::SyncData(int fd, const std::string& path) {
  if (::fdatasync(fd) != 0) return Status::FromErrno(errno, "fdatasync " + path);
  return Status::Ok();
}

Status Env::Truncate(int fd, uint64_t size, const std::string& path) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return Status::FromErrno(errno, "truncate " + path);
  return Status::Ok();
}

Status Env::PunchHole(int fd, uint64_t off, uint64_t len, const std::string& path) {
  if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off), static_cast<off_t>(len)) != 0) {
    return Status::FromErrno(errno, "punch a hole in " + path);
  }
  return Status::Ok();
}

Status Env::Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Status::FromErrno(errno, "rename " + from + " to " + to);
  }
  return Status::Ok();
}

Status Env::RenameNoReplace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return Status::Ok();
  if (errno != EINVAL && errno != ENOSYS) {
    if (errno == EEXIST) return Status::Exists(to + ": already exists");
    return Status::FromErrno(errno, "rename " + from + " to " + to);
  }
  // A file system without RENAME_NOREPLACE: link() never replaces either.
  if (::link(from.c_str(), to.c_str()) != 0) {
    if (errno == EEXIST) return Status::Exists(to + ": already exists");
    return Status::FromErrno(errno, "link " + from + " to " + to);
  }
  ::unlink(from.c_str());
  return Status::Ok();
}

Status Env::Remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return Status::FromErrno(errno, "remove " + path);
  return Status::Ok();
}

Status Env::FsyncDir(const std::string& dir) {
  LM_ASSIGN_OR_RETURN(UniqueFd fd, Open(dir, O_RDONLY | O_DIRECTORY));
  return Fsync(fd.get(), dir);
}

int64_t Env::NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::string> Env::ReadFile(const std::string& path) {
  LM_ASSIGN_OR_RETURN(UniqueFd fd, Open(path, O_RDONLY));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, path);
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  LM_RETURN_IF_ERROR(PRead(fd.get(), data.data(), data.size(), 0, &got, path));
  data.resize(got);
  return data;
}

Status Env::WriteFileAtomic(const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp-" + RandomHex(4);
  {
    LM_ASSIGN_OR_RETURN(UniqueFd fd, Open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
    Status s = PWrite(fd.get(), data.data(), data.size(), 0, tmp);
    if (s.ok()) s = Fsync(fd.get(), tmp);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
  }
  Status s = Rename(tmp, path);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return FsyncDir(DirName(path));
}

Status MkdirAll(const std::string& path, mode_t mode) {
  if (path.empty() || IsDirectory(path)) return Status::Ok();
  std::string parent = DirName(path);
  if (parent != path) LM_RETURN_IF_ERROR(MkdirAll(parent, mode));
  if (::mkdir(path.c_str(), mode) != 0) {
    if (errno != EEXIST) return Status::FromErrno(errno, "mkdir " + path);
    if (!IsDirectory(path)) return Status::Exists(path + ": exists and is not a directory");
  }
  return Status::Ok();
}

Status RemoveTree(const std::string& path) {
  if (!PathExists(path)) return Status::Ok();
  auto rm = [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); };
  if (::nftw(path.c_str(), rm, 16, FTW_DEPTH | FTW_PHYS) != 0) {
    return Status::FromErrno(errno, "remove " + path);
  }
  return Status::Ok();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<std::vector<std::string>> ListDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, dir);
  return ListDirAt(fd.get(), dir);
}

Result<std::vector<std::string>> ListDirAt(int dirfd, const std::string& shown) {
  int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return Status::FromErrno(errno, shown);
  DIR* d = ::fdopendir(dup);
  if (!d) {
    int e = errno;
    ::close(dup);
    return Status::FromErrno(e, shown);
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  int err = errno;
  ::closedir(d);
  if (err) return Status::FromErrno(err, "read directory " + shown);
  std::sort(names.begin(), names.end());
  return names;
}

std::string DirName(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

std::string AbsolutePath(const std::string& path) {
  char* r = ::realpath(path.c_str(), nullptr);
  std::string out = r ? r : path;
  free(r);
  return out;
}

std::string JoinPath(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

std::string HostName() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

uint64_t ProcessStartTime(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto paren = line.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return 0;
  std::istringstream fields(line.substr(paren + 2));
  std::string f;
  for (int i = 3; i <= 22 && fields >> f; i++) {
    if (i == 22) return std::strtoull(f.c_str(), nullptr, 10);
  }
  return 0;
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t r = ::getrandom(raw.data() + got, bytes - got, 0);
    if (r > 0) got += r;
  }
  return HexEncode(raw);
}

}  // namespace lm

#include "agent/control.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>

#include "agent/mount_table.h"
#include "base/log.h"

namespace lm {

using nlohmann::json;

namespace {

socklen_t AbstractAddress(const std::string& name, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  size_t n = std::min(name.size(), sizeof addr->sun_path - 2);
  std::memcpy(addr->sun_path + 1, name.data(), n);  // sun_path[0] = 0: abstract namespace
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
}

bool WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += n;
  }
  return true;
}

// Reads one line (without the newline), waiting up to timeout_ms between pieces.
bool ReadLine(int fd, std::string* line, int timeout_ms) {
  line->clear();
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return !line->empty();
    size_t seen = line->size();  // only the new piece can hold the newline
    line->append(buf, n);
    auto nl = line->find('\n', seen);
    if (nl != std::string::npos) {
      line->resize(nl);
      return true;
    }
    if (line->size() > (16 << 20)) return false;
  }
}

// Only a real livemount FUSE mount, mounted by root or by the caller, is asked anything:
// any user can put user.livemount.* attributes on a directory of their own.
Status CheckLivemountMount(const std::string& path) {
  auto m = FindMount(path);
  if (!m) return Status::NotFound(path + ": not a livemount mount (not a mountpoint)");
  if (m->fstype != kLivemountFsType) {
    return Status::Invalid(path + ": not a livemount mount (it is a " + m->fstype + " mount)");
  }
  if (!m->fuse_owner || (*m->fuse_owner != 0 && *m->fuse_owner != ::getuid())) {
    return Status::Invalid(path + ": a livemount mount of another user (uid " +
                           (m->fuse_owner ? std::to_string(*m->fuse_owner) : std::string("?")) + "); not trusted");
  }
  return Status::Ok();
}

Result<std::string> GetXattr(const std::string& path, const char* name) {
  LM_RETURN_IF_ERROR(CheckLivemountMount(path));
  char buf[256];
  ssize_t n = ::getxattr(path.c_str(), name, buf, sizeof buf);
  if (n < 0 && errno == ENOTCONN) {
    return Status::Of(Code::kBusy, path + ": the media agent of this mount is gone (run livemount umount " + path + ")");
  }
  if (n < 0) {
    return Status::NotFound(path + ": not a livemount mount (no " + name + ": " +
                            std::strerror(errno) + ")");
  }
  return std::string(buf, n);
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& name, Handler h) {
  std::unique_ptr<ControlServer> s(new ControlServer());
  s->handler_ = std::move(h);
  s->listen_fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s->listen_fd_.valid()) return Status::FromErrno(errno, "control socket");
  sockaddr_un addr;
  socklen_t len = AbstractAddress(name, &addr);
  if (::bind(s->listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    return Status::FromErrno(errno, "bind control socket @" + name);
  }
  if (::listen(s->listen_fd_.get(), 16) != 0) return Status::FromErrno(errno, "listen @" + name);
  s->stop_fd_.reset(::eventfd(0, EFD_CLOEXEC));
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

ControlServer::~ControlServer() {
  uint64_t one = 1;
  if (stop_fd_.valid()) (void)!::write(stop_fd_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  std::unique_lock lock(active_mu_);
  active_cv_.wait(lock, [&] { return active_ == 0; });
}

void ControlServer::Loop() {
  for (;;) {
    pollfd p[2] = {{listen_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    if (!(p[0].revents & POLLIN)) continue;
    UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd.valid()) continue;
    ucred cred{};
    socklen_t cl = sizeof cred;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 ||
        (cred.uid != 0 && cred.uid != ::getuid())) {
      WriteAll(fd.get(), json({{"error", "permission denied"}, {"code", static_cast<int>(Code::kInvalid)}}).dump() + "\n");
      continue;
    }
    // Each request on its own thread: a long one (a prestage) must not block `stats`.
    {
      std::lock_guard lock(active_mu_);
      active_++;
    }
    std::thread([this, f = fd.release()] {
      Serve(f);
      std::lock_guard lock(active_mu_);
      if (--active_ == 0) active_cv_.notify_all();
    }).detach();
  }
}

void ControlServer::Serve(int raw_fd) {
  UniqueFd fd(raw_fd);
  std::string line;
  if (!ReadLine(fd.get(), &line, 10000)) return;
  json req = json::parse(line, nullptr, false);
  json reply;
  if (req.is_discarded() || !req.is_object()) {
    reply = {{"error", "request is not a JSON object"}, {"code", static_cast<int>(Code::kInvalid)}};
  } else {
    try {
      reply = handler_(req);
    } catch (const std::exception& e) {
      reply = {{"error", std::string("internal error: ") + e.what()}, {"code", static_cast<int>(Code::kIoError)}};
    }
  }
  WriteAll(fd.get(), reply.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
}

Result<json> ControlRequest(const std::string& name, const json& request, int timeout_ms) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno(errno, "socket");
  sockaddr_un addr;
  socklen_t len = AbstractAddress(name, &addr);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    return Status::FromErrno(errno, "connect to the media agent's control socket @" + name);
  }
  // Abstract socket names can be taken by anyone: talk only to root or to ourselves.
  ucred peer{};
  socklen_t pl = sizeof peer;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &pl) != 0 ||
      (peer.uid != 0 && peer.uid != ::getuid())) {
    return Status::Invalid("control socket @" + name + " belongs to uid " + std::to_string(peer.uid) +
                           ", not to root or to this user; not trusted");
  }
  if (!WriteAll(fd.get(), request.dump(-1, ' ', false, json::error_handler_t::replace) + "\n")) return Status::IoError("send to @" + name);
  std::string line;
  if (!ReadLine(fd.get(), &line, timeout_ms)) {
    return Status::IoError("no reply from the media agent (@" + name + ")");
  }
  json reply = json::parse(line, nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) return Status::Corrupt("malformed reply from the media agent");
  return reply;
}

Result<std::string> ControlNameOf(const std::string& mountpoint) {
  return GetXattr(mountpoint, "user.livemount.control");
}

Result<int> DaemonPidOf(const std::string& mountpoint) {
  LM_ASSIGN_OR_RETURN(std::string pid, GetXattr(mountpoint, "user.livemount.pid"));
  char* end = nullptr;
  long v = std::strtol(pid.c_str(), &end, 10);
  if (pid.empty() || *end != '\0' || v <= 1 || v > (1 << 22)) {
    return Status::Corrupt(mountpoint + ": the media agent reports an invalid pid");
  }
  return static_cast<int>(v);
}

}  // namespace lm

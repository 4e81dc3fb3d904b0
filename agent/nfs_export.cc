#include "agent/nfs_export.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <glob.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>

#include "base/env.h"
#include "base/log.h"
#include "base/subprocess.h"

namespace lm {

namespace {

using Clock = std::chrono::steady_clock;

const char* kPseudo = "/livemount";

bool SafeToken(const std::string& s) {
  if (s.empty() || s.size() > 255) return false;
  for (char c : s) {
    if (!isalnum(static_cast<unsigned char>(c)) && !std::strchr(".:/-_*", c)) return false;
  }
  return true;
}

// True if something accepts TCP connections on addr:port.
bool Answers(const std::string& addr, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  bool ok = ::inet_pton(AF_INET, addr.c_str(), &sa.sin_addr) == 1 &&
            ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

std::string ProbeAddress(const ExportOptions& o) { return o.bind == "0.0.0.0" ? "127.0.0.1" : o.bind; }

std::string FindProgram(const std::vector<std::string>& candidates) {
  for (auto& c : candidates) {
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  return "";
}

bool HaveFsalVfs() {
  glob_t g{};
  bool found = ::glob("/usr/lib/*/ganesha/libfsalvfs.so", 0, nullptr, &g) == 0 && g.gl_pathc > 0;
  if (!found) found = ::access("/usr/lib/ganesha/libfsalvfs.so", R_OK) == 0;
  ::globfree(&g);
  return found;
}

Status EnsureRpcbind() {
  if (Answers("127.0.0.1", 111)) return Status::Ok();
  std::string rpcbind = FindProgram({"/usr/sbin/rpcbind", "/sbin/rpcbind"});
  if (rpcbind.empty()) {
    return Status::NotFound("rpcbind is not installed (apt-get install rpcbind); NFS needs it");
  }
  LogInfo("starting rpcbind (nothing answered on port 111)");
  if (RunCommand({rpcbind, "-w"}, nullptr, false) != 0) return Status::IoError("could not start " + rpcbind);
  if (WaitUntil(std::chrono::seconds(5), std::chrono::milliseconds(50), [] { return Answers("127.0.0.1", 111); })) {
    return Status::Ok();
  }
  return Status::IoError("rpcbind started but does not answer on port 111");
}

// A ganesha left by a media agent that was killed holds the ports and a dead mount: stop it.
void StopStaleGanesha(const std::string& dir) {
  std::ifstream pidfile(JoinPath(dir, "ganesha.pid"));
  pid_t pid = 0;
  if (!(pidfile >> pid) || pid <= 1) return;
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
  std::string cmdline((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
  if (cmdline.find(JoinPath(dir, "ganesha.conf")) == std::string::npos) return;
  LogWarn("stopping a stale nfs-ganesha (pid " + std::to_string(pid) + ") left by an earlier media agent");
  ::kill(pid, SIGTERM);
  if (WaitUntil(std::chrono::seconds(10), std::chrono::milliseconds(50), [&] { return !ProcessAlive(pid); })) return;
  ::kill(pid, SIGKILL);
}

// The first serious line ganesha logged after `from`, for error messages.
std::string LogProblem(const std::string& log, uint64_t from) {
  std::ifstream f(log);
  f.seekg(static_cast<std::streamoff>(from));
  std::string line, found;
  while (std::getline(f, line)) {
    bool serious = line.find(":FATAL :") != std::string::npos || line.find(":MAJ :") != std::string::npos ||
                   (line.find(":CRIT :") != std::string::npos && line.find("DBUS") == std::string::npos &&
                    line.find("principal nfs") == std::string::npos);
    if (serious && found.empty()) found = line.substr(line.find(']') == std::string::npos ? 0 : line.find(']') + 2);
  }
  return found;
}

bool LogSays(const std::string& log, uint64_t from, const std::string& what) {
  std::ifstream f(log);
  f.seekg(static_cast<std::streamoff>(from));
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return text.find(what) != std::string::npos;
}

uint64_t FileSize(const std::string& path) {
  struct ::stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

Status ExportOptions::validate() const {
  if (!env) return Status::Invalid("export options: no env");
  if (mountpoint.empty() || mountpoint[0] != '/') return Status::Invalid("export: the mountpoint must be an absolute path");
  if (mountpoint.find_first_of("\"\n\\") != std::string::npos) {
    return Status::Invalid("export: the mountpoint path " + mountpoint + " cannot be exported (quote or newline)");
  }
  if (dir.empty()) return Status::Invalid("export: no state directory");
  if (!SafeToken(bind)) return Status::Invalid("--bind: not an IPv4 address: " + bind);
  in_addr a;
  if (::inet_pton(AF_INET, bind.c_str(), &a) != 1) return Status::Invalid("--bind: not an IPv4 address: " + bind);
  if (nfs_port == 0 || mount_port == 0 || nfs_port == mount_port) {
    return Status::Invalid("--nfs-port and --mount-port must be two different, non-zero ports");
  }
  for (auto& c : clients) {
    if (!SafeToken(c)) return Status::Invalid("--client: not a host name, address or network: " + c);
  }
  return Status::Ok();
}

std::string GaneshaConfig(const ExportOptions& o) {
  std::ostringstream c;
  std::string clients;
  for (auto& h : o.clients.empty() ? std::vector<std::string>{"127.0.0.1"} : o.clients) {
    clients += (clients.empty() ? "" : ", ") + h;
  }
  c << "# Written by livemount for the live mount at " << o.mountpoint << "; rewritten at every export.\n"
    << "NFS_CORE_PARAM {\n"
    << "  Protocols = 3, 4;\n"
    << "  NFS_Port = " << o.nfs_port << ";\n"
    << "  MNT_Port = " << o.mount_port << ";\n"
    << "  Bind_addr = " << o.bind << ";\n"
    << "  Enable_NLM = false;\n"     // hypervisors lock with their own files (ESXi .lck)
    << "  Enable_RQUOTA = false;\n"
    << "}\n"
    << "NFSV4 {\n"
    << "  Graceless = true;\n"        // no 90 s grace period after a restart
    << "  RecoveryRoot = " << Quoted(JoinPath(o.dir, "recovery")) << ";\n"
    << "}\n"
    << "EXPORT {\n"
    << "  Export_Id = 1;\n"
    << "  Path = " << Quoted(o.mountpoint) << ";\n"
    << "  Pseudo = " << Quoted(kPseudo) << ";\n"
    << "  Protocols = 3, 4;\n"
    << "  Transports = TCP;\n"
    << "  SecType = sys;\n"
    << "  Squash = No_Root_Squash;\n"  // hypervisors write as root
    << "  Access_Type = None;\n"       // only the clients below
    << "  Attr_Expiration_Time = 1;\n" // new backup copies show up within a second
    << "  FSAL {\n"
    << "    Name = VFS;\n"
    << "    fsid_type = Major64;\n"    // same filesystem id on every mount: handles survive restarts
    << "  }\n"
    << "  CLIENT {\n"
    << "    Clients = " << clients << ";\n"
    << "    Access_Type = " << (o.read_only ? "RO" : "RW") << ";\n"
    << "  }\n"
    << "}\n";
  return c.str();
}

Result<std::unique_ptr<NfsExport>> NfsExport::Start(const ExportOptions& o) {
  LM_RETURN_IF_ERROR(o.validate());
  std::string ganesha = FindProgram({"/usr/bin/ganesha.nfsd", "/usr/sbin/ganesha.nfsd"});
  if (ganesha.empty() || !HaveFsalVfs()) {
    return Status::NotFound("nfs-ganesha with FSAL VFS is not installed (apt-get install nfs-ganesha nfs-ganesha-vfs)");
  }
  LM_RETURN_IF_ERROR(MkdirAll(JoinPath(o.dir, "recovery")));
  StopStaleGanesha(o.dir);
  std::string probe = ProbeAddress(o);
  for (auto [port, flag] : {std::pair{o.nfs_port, "--nfs-port"}, std::pair{o.mount_port, "--mount-port"}}) {
    if (Answers(probe, port)) {
      return Status::Busy("port " + std::to_string(port) + " on " + probe +
                          " is in use (the kernel's NFS server or another export?); choose another with " + flag);
    }
  }
  LM_RETURN_IF_ERROR(EnsureRpcbind());

  std::string conf = JoinPath(o.dir, "ganesha.conf"), log = JoinPath(o.dir, "ganesha.log"),
              pidfile = JoinPath(o.dir, "ganesha.pid");
  LM_RETURN_IF_ERROR(o.env->WriteFileAtomic(conf, GaneshaConfig(o)));
  uint64_t log_start = FileSize(log);

  std::unique_ptr<NfsExport> e(new NfsExport());
  e->options_ = o;
  std::vector<std::string> argv = {ganesha, "-F", "-f", conf, "-L", log, "-p", pidfile, "-N", "NIV_EVENT"};
  std::promise<pid_t> started;
  auto pid_future = started.get_future();
  NfsExport* self = e.get();
  e->keeper_ = std::thread([self, argv, &started] {
    SpawnOptions so;
    so.death_signal = SIGTERM;      // dies with this thread: a killed agent takes its export down
    so.new_process_group = true;    // a terminal's Ctrl-C goes to the agent, which stops us in order
    auto child = Subprocess::Spawn(argv, so);  // every descriptor closes, /dev/fuse above all
    started.set_value(child.ok() ? child->pid() : -1);
    if (!child.ok()) return;
    int status = child->Wait();
    std::lock_guard lock(self->mu_);
    self->exited_ = true;
    self->exit_status_ = status;
  });
  e->pid_ = pid_future.get();
  if (e->pid_ < 0) return Status::IoError("cannot start nfs-ganesha: fork failed");

  bool serving = false;
  WaitUntil(std::chrono::seconds(30), std::chrono::milliseconds(50), [&] {
    serving = LogSays(log, log_start, "NFS SERVER INITIALIZED") && Answers(probe, o.nfs_port);
    return serving || !e->running();
  });
  if (!serving && !e->running()) {
    std::string why = LogProblem(log, log_start);
    return Status::IoError("nfs-ganesha exited while starting" + (why.empty() ? "" : ": " + why) +
                           " (log: " + log + ")");
  }
  if (!serving) {
    e->Stop();
    return Status::IoError("nfs-ganesha did not start serving within 30 s (log: " + log + ")");
  }
  LogInfo("exporting " + o.mountpoint + " over NFS on " + o.bind + ":" + std::to_string(o.nfs_port) +
          " (nfs-ganesha pid " + std::to_string(e->pid_) + ", log " + log + ")");
  return e;
}

bool NfsExport::running() const {
  std::lock_guard lock(mu_);
  return pid_ > 0 && !exited_;
}

void NfsExport::Stop() {
  if (running()) {
    ::kill(pid_, SIGTERM);
    if (!WaitUntil(std::chrono::seconds(10), std::chrono::milliseconds(20), [&] { return !running(); })) {
      LogWarn("nfs-ganesha (pid " + std::to_string(pid_) + ") did not stop in 10 s; killing it");
      ::kill(pid_, SIGKILL);
    }
  }
  if (keeper_.joinable()) {
    keeper_.join();
    LogInfo("stopped the NFS export of " + options_.mountpoint);
  }
}

NfsExport::~NfsExport() { Stop(); }

control::ExportInfo NfsExport::Describe() const {
  control::ExportInfo e;
  e.running = running();
  e.pid = pid_;
  e.path = options_.mountpoint;
  e.pseudo = kPseudo;
  e.bind = options_.bind;
  e.nfs_port = options_.nfs_port;
  e.mount_port = options_.mount_port;
  e.clients = options_.clients;
  e.read_only = options_.read_only;
  e.config = JoinPath(options_.dir, "ganesha.conf");
  e.log = JoinPath(options_.dir, "ganesha.log");
  return e;
}

std::string AdvertisedAddress(const ExportOptions& o) {
  std::string found = "127.0.0.1";
  if (o.bind != "0.0.0.0") return o.bind;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return found;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    char buf[INET_ADDRSTRLEN];
    auto* sin = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if (!::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf)) continue;
    if (std::strncmp(buf, "127.", 4) == 0) continue;
    found = buf;
    break;
  }
  ::freeifaddrs(list);
  return found;
}

std::string HypervisorInstructions(const ExportOptions& o, const std::string& server) {
  const std::string& m = o.mountpoint;
  std::string clients;
  for (auto& c : o.clients) clients += (clients.empty() ? "" : ", ") + c;
  std::ostringstream s;
  s << "NFS export of " << m << " on " << server << " (NFSv3 and v4, port " << o.nfs_port
    << (o.read_only ? ", read-only" : ", read-write") << ")\n"
    << "  share (NFSv3): " << server << ":" << m << "    (NFSv4: " << server << ":" << kPseudo << ")\n"
    << "  a VM's files:  <share>/<vm>/<backup-id>/   ('latest' works where the share is mounted:\n"
    << "                 ESXi, libvirt pools, Linux; not in QEMU nfs:// URLs, whose MOUNT request names\n"
    << "                 the directory itself and cannot go through a symlink: use the backup id there)\n"
    << "  clients allowed: " << (clients.empty() ? "127.0.0.1 only; add --client HOST for each hypervisor" : clients) << "\n\n"
    << "VMware ESXi:\n"
    << "  esxcli storage nfs add --host " << server << " --share " << m << " --volume-name livemount\n"
    << "  vim-cmd solo/registervm /vmfs/volumes/livemount/<vm>/<backup-id>/<vm>.vmx\n";
  if (o.nfs_port != 2049) s << "  (ESXi only connects to port 2049: export with --nfs-port 2049)\n";
  s << "\nlibvirt (NFS storage pool; virsh pool-define POOL.xml && virsh pool-start livemount):\n"
    << "  <pool type='netfs'><name>livemount</name>\n"
    << "    <source><host name='" << server << "'/><dir path='" << m << "'/><format type='nfs'/></source>\n"
    << "    <target><path>/var/lib/libvirt/livemount</path></target></pool>\n"
    << "  or QEMU directly: -drive file=nfs://" << server << m << "/<vm>/<backup-id>/<disk>\n"
    << "\nProxmox VE:\n"
    << "  pvesm add nfs livemount --server " << server << " --export " << m
    << " --path /mnt/pve/livemount --content images --options vers=3,nolock\n";
  return s.str();
}

}  // namespace lm

// `livemount run`: one command from a backup copy to a running VM (agent/launch.h).
//
//   run REPO VM[@BACKUP] --mount MP    a media agent serves REPO at MP (the running one, or one
//                                      started now), the copy is pre-staged in the background
//                                      (--prestage), its configuration is adapted and the VM
//                                      is defined and started; the console is printed
//   run --stop NAME [--discard]        powers it off, undefines it, optionally drops its overlay
//   run --list                         what `run` started, and its state
//
// The VM's configuration is read from the copy as the mount shows it (an administrator may
// have edited the .vmx on the mount), without the views (user.livemount.view).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

#include <chrono>
#include <ctime>
#include <thread>

#include "agent/control_client.h"
#include "agent/launch.h"
#include "agent/media_agent.h"
#include "agent/mount_table.h"
#include "base/env.h"
#include "base/names.h"
#include "base/state_layout.h"
#include "guest/copy_views.h"
#include "store/repository.h"
#include "tools/cli/commands.h"
#include "tools/cli/config.h"
#include "tools/cli/from_mount.h"
#include "tools/cli/password.h"

namespace lm::cli {

namespace {

struct RunArgs {
  std::string repo, spec, hypervisor = "libvirt", name, network = "isolated", mount, cache_dir, state_dir;
  std::string connect = "qemu:///system", qemu = "qemu-system-x86_64", nfs_host, datastore = "livemount";
  std::string stop;
  bool prestage = false, discard = false, list = false;
};

bool IsLivemountMount(const std::string& mp) {
  auto m = FindMount(mp);
  return m && m->fstype == kLivemountFsType;
}

// The mount serving REPO: --mount MP (an agent started there if none runs), else the first
// running agent that serves REPO.
Result<std::string> EnsureAgent(const RunArgs& a, bool allow_other) {
  std::string want = AbsoluteLocation(a.repo);
  auto serves = [&](const std::string& mp) -> Result<bool> {
    LM_ASSIGN_OR_RETURN(auto agent, ControlClient::ForMount(mp));
    LM_ASSIGN_OR_RETURN(auto stats, agent.Stats());
    return AbsoluteLocation(stats.repository) == want;
  };
  std::string mp = a.mount.empty() ? CurrentConfig().mountpoint.value_or("") : a.mount;
  if (!mp.empty() && IsLivemountMount(AbsoluteMountPath(mp))) {
    mp = AbsoluteMountPath(mp);
    LM_ASSIGN_OR_RETURN(bool same, serves(mp));
    if (!same) return Status::Invalid(mp + " serves another repository than " + a.repo);
  } else if (mp.empty()) {
    for (const MountEntry& m : LivemountMounts()) {
      auto same = serves(m.mountpoint);
      if (same.ok() && *same) {
        mp = m.mountpoint;
        break;
      }
    }
    if (mp.empty()) return Status::Invalid("no media agent serves " + a.repo + ": give --mount MOUNTPOINT (an empty directory)");
  } else {
    MountOptions o;
    o.env = CliEnv();
    o.repo = a.repo;
    o.mountpoint = mp;
    o.cache_dir = a.cache_dir;
    o.state_dir = a.state_dir;
    o.allow_other = allow_other;
    // Asked now, at the terminal, not by the media agent after it went to the background.
    auto config = ReadRepoConfig(o.repo, o.env);
    if (config.ok() && config->encrypted) LM_RETURN_IF_ERROR(RepoPassword().status());
    o.password = CliPasswordSource();
    LM_RETURN_IF_ERROR(MkdirAll(mp, 0755));
    if (RunMediaAgent(o) != 0) return Status::IoError("cannot start a media agent at " + mp + " (said above)");
    mp = AbsoluteMountPath(mp);
  }
  if (allow_other) {
    auto m = FindMount(mp);
    if (!m || m->super_options.find("allow_other") == std::string::npos) {
      return Status::Invalid(mp + " is mounted without --allow-other: libvirt's QEMU (another user) cannot open its disks");
    }
  }
  return mp;
}

// The copy's regular files as the mount shows them, without the views.
Status ListCopy(const std::string& copy_dir, std::vector<FileEntry>* out) {
  // A VM directory: a few files, rarely a folder or two (a hostile copy is not walked long).
  LM_ASSIGN_OR_RETURN(std::vector<MountFile> files, ListCopyOnMount(copy_dir, 10000, 8));
  for (const MountFile& m : files) {
    if (m.view) continue;
    FileEntry f;
    f.path = m.path;
    f.size = m.size;
    out->push_back(f);
  }
  return Status::Ok();
}

CopyFileReader MountReader(const std::string& copy_dir) {
  return [copy_dir](const std::string& path, uint64_t off, size_t len) -> Result<std::string> {
    std::string full = JoinPath(copy_dir, path);
    LM_ASSIGN_OR_RETURN(UniqueFd fd, CliEnv()->Open(full, O_RDONLY | O_NOFOLLOW, 0));
    std::string out(len, '\0');
    size_t got = 0;
    while (got < len) {
      ssize_t n = ::pread(fd.get(), out.data() + got, len - got, static_cast<off_t>(off + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::FromErrno(errno, full);
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    out.resize(got);
    return out;
  };
}

// The backup id BACKUP names on the mount (`latest` is a symlink to the newest).
Result<std::string> CopyIdOnMount(const std::string& mp, const std::string& repo, const std::string& vm,
                                  const std::string& backup) {
  std::string vm_dir = JoinPath(mp, vm);
  if (!PathExists(vm_dir)) return Status::NotFound(repo + " has no VM named " + vm);
  std::string id = backup;
  if (backup == "latest") {
    char target[256];
    ssize_t n = ::readlink(JoinPath(vm_dir, "latest").c_str(), target, sizeof target - 1);
    if (n <= 0) return Status::NotFound(vm + " has no backup copy");
    id.assign(target, static_cast<size_t>(n));
  }
  if (!IsValidBackupId(id) || !PathExists(JoinPath(vm_dir, id))) {
    return Status::NotFound(repo + " has no backup copy " + vm + "@" + id);
  }
  return id;
}

// `--hypervisor esxi`: the commands, with the .vmx ESXi registers (the copy's own, or the
// one the mount made for a KVM copy).
// `copy`: "vm/id", the copy's path in the export.
int PrintEsxi(const RunArgs& a, const std::string& name, const std::string& mp, const control::MountStats& stats,
              const std::string& copy_dir, const std::string& copy) {
  std::string vmx;
  auto names = ListDir(copy_dir);
  if (!names.ok()) return Report(names.status());
  for (const std::string& n : *names) {
    if (n.size() > 4 && n.compare(n.size() - 4, 4, ".vmx") == 0) vmx = n;
  }
  if (vmx.empty()) return Report(Status::NotFound(copy_dir + ": no .vmx (the copy's configuration could not be translated)"));
  std::string nfs_path = "/livemount";
  if (!stats.export_ || !stats.export_->running) {
    fmt::print("# The mount is not exported yet: livemount export {} --client ESXI\n", mp);
  } else if (!stats.export_->pseudo.empty()) {
    nfs_path = stats.export_->pseudo;
  }
  std::string host = a.nfs_host.empty() ? "THIS-HOST" : a.nfs_host;
  fmt::print("{}", EsxiRecipe(name, copy + "/" + vmx, host, nfs_path, a.datastore));
  return 0;
}

int Launch(const RunArgs& a, const std::string& name, const std::string& mp, const ControlClient& agent,
           const std::string& state_dir, const VmConfig& config, const std::string& copy_dir, const std::string& vm,
           const std::string& id);

std::unique_ptr<Launcher> LauncherFor(const std::string& hypervisor, const std::string& uri, const std::string& run_dir,
                                      const std::string& qemu) {
  if (hypervisor == "qemu") return MakeQemuLauncher(run_dir, qemu, HostHasKvm() ? "kvm" : "tcg");
  return MakeLibvirtLauncher(uri, HostHasKvm() ? "kvm" : "qemu");
}

int Start(const RunArgs& a) {
  if (a.hypervisor != "libvirt" && a.hypervisor != "qemu" && a.hypervisor != "esxi") {
    return Report(Status::Invalid("--hypervisor must be libvirt, qemu or esxi"));
  }
  if (a.spec.empty()) return Report(Status::Invalid("run needs VM[@BACKUP] (and REPO, unless configured)"));
  if (a.repo.empty()) return Report(Status::Invalid("run needs REPO (or LIVEMOUNT_REPOSITORY, or repository in the configuration)"));
  std::string vm = a.spec.substr(0, a.spec.find('@'));
  std::string backup = a.spec.find('@') == std::string::npos ? "latest" : a.spec.substr(a.spec.find('@') + 1);
  if (Status s = CheckVmName(vm); !s.ok()) return Report(s);
  std::string name = a.name.empty() ? vm + "-livemount" : a.name;
  if (Status s = CheckRunName(name); !s.ok()) return Report(s);
  if (a.network != "isolated" && a.network != "none" && !IsValidName(a.network)) {
    return Report(Status::Invalid("--network must be isolated, none or the name of a host bridge"));
  }
  auto mp = EnsureAgent(a, a.hypervisor == "libvirt");
  if (!mp.ok()) return Report(mp.status().Context("run"));
  auto agent = ControlClient::ForMount(*mp);
  auto stats = agent.ok() ? agent->Stats() : Result<control::MountStats>(agent.status());
  if (!stats.ok()) return Report(stats.status().Context("run"));

  auto id = CopyIdOnMount(*mp, a.repo, vm, backup);
  if (!id.ok()) return Report(id.status());
  std::string copy_dir = JoinPath(JoinPath(*mp, vm), *id);
  std::vector<FileEntry> files;
  if (Status s = ListCopy(copy_dir, &files); !s.ok()) return Report(s);
  std::string family = a.hypervisor == "esxi" ? "vmware" : "libvirt";
  auto config = CopyVmConfig(files, MountReader(copy_dir), family, vm + "@" + *id);
  if (!config.ok()) return Report(config.status());
  if (a.hypervisor == "esxi") return PrintEsxi(a, name, *mp, *stats, copy_dir, vm + "/" + *id);
  return Launch(a, name, *mp, *agent, stats->state_dir, *config, copy_dir, vm, *id);
}

// The VM defined and started (after the pre-staging asked for), and its record.
int Launch(const RunArgs& a, const std::string& name, const std::string& mp, const ControlClient& agent,
           const std::string& state_dir, const VmConfig& config, const std::string& copy_dir, const std::string& vm,
           const std::string& id) {

  if (a.prestage) {
    control::PrestageRequest p;
    p.backup = vm + "@" + id;
    p.background = true;
    auto r = agent.Prestage(p);
    if (!r.ok()) return Report(r.status().Context("run --prestage"));
    fmt::print("pre-staging {} in the background (the guest's reads go first)\n", r->backup);
  }
  RecoveryOptions ro;
  ro.name = name;
  ro.network = a.network;
  VmConfig c = AdaptForRecovery(config, ro);
  for (VmDisk& d : c.disks) d.file = JoinPath(copy_dir, d.file);

  auto existing = LoadRunRecord(state_dir, name);
  StateLayout layout(state_dir);
  RunRecord r;
  r.name = name;
  r.hypervisor = a.hypervisor;
  r.vm = vm;
  r.backup = id;
  r.mountpoint = mp;
  r.copy_dir = copy_dir;
  r.started_unix = static_cast<int64_t>(std::time(nullptr));
  auto log = layout.RunFile(name, ".serial.log");
  if (!log.ok()) return Report(log.status());
  r.serial_log = *log;
  if (existing.ok()) {
    auto launcher = LauncherFor(existing->hypervisor, existing->libvirt_uri, layout.RunsDir(), a.qemu);
    std::string state = launcher->State(*existing);
    if (state == "running" || state == "paused") {
      return Report(Status::Exists(name + " is " + state + " (livemount run --stop " + name + ")"));
    }
    if (Status s = launcher->Stop(*existing); !s.ok()) return Report(s);  // a leftover definition
  }
  if (Status s = MkdirAll(layout.RunsDir()); !s.ok()) return Report(s);
  auto launcher = LauncherFor(a.hypervisor, a.connect, layout.RunsDir(), a.qemu);
  if (Status s = launcher->Start(c, &r); !s.ok()) return Report(s);
  if (Status s = SaveRunRecord(state_dir, r); !s.ok()) {
    (void)launcher->Stop(r);  // a VM nobody can stop with `run --stop` is worse than none
    return Report(s);
  }
  fmt::print("started {} on {} from {}@{} ({})\n", name, a.hypervisor == "qemu" ? "QEMU" : r.libvirt_uri, vm, id,
             copy_dir);
  fmt::print("  console:    {}\n  serial log: {}\n  stop:       livemount run --stop {} [--discard]\n", r.console,
             r.serial_log, name);
  return 0;
}

// The state directories to look for NAME's record in: --state-dir, else the default and
// those of the running media agents.
std::vector<std::string> StateDirs(const RunArgs& a) {
  if (!a.state_dir.empty()) return {AbsolutePath(a.state_dir)};
  std::vector<std::string> dirs = {DefaultStateDir()};
  for (const MountEntry& m : LivemountMounts()) {
    auto agent = ControlClient::ForMount(m.mountpoint);
    auto stats = agent.ok() ? agent->Stats() : Result<control::MountStats>(agent.status());
    if (stats.ok() && std::find(dirs.begin(), dirs.end(), stats->state_dir) == dirs.end()) dirs.push_back(stats->state_dir);
  }
  return dirs;
}

int StopRun(const RunArgs& a) {
  if (Status s = CheckRunName(a.stop); !s.ok()) return Report(s);
  Result<RunRecord> r = Status::NotFound("no VM named " + a.stop + " was started by livemount run");
  std::string state_dir;
  for (const std::string& dir : StateDirs(a)) {
    auto found = LoadRunRecord(dir, a.stop);
    if (found.ok() || found.status().code() != Code::kNotFound) {
      r = std::move(found);
      state_dir = dir;
      break;
    }
  }
  if (!r.ok()) return Report(r.status());
  auto launcher = LauncherFor(r->hypervisor, r->libvirt_uri, StateLayout(state_dir).RunsDir(), a.qemu);
  if (Status s = launcher->Stop(*r); !s.ok()) return Report(s);
  fmt::print("stopped {}\n", r->name);
  if (a.discard) {
    auto agent = ControlClient::ForMount(r->mountpoint);
    if (!agent.ok()) return Report(agent.status().Context("run --discard"));
    // The hypervisor closes the disks as it ends; the mount sees the last close a moment later.
    Result<control::DiscardReply> d = Status::Busy("");
    for (int i = 0; i < 100; i++) {
      d = agent->Discard({r->vm + "@" + r->backup});
      if (d.ok() || d.status().code() != Code::kBusy) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!d.ok() && d.status().code() == Code::kBusy) {
      // The VM is off: what still holds a file is another program (an NFS export's server).
      return Report(Status::Busy(d.status().message() + " (the VM is off: is the copy exported over NFS? "
                                 "livemount export " + r->mountpoint + " --stop; then run --stop again)"));
    }
    if (!d.ok()) return Report(d.status().Context("run --discard (the record is kept)"));
    fmt::print("discarded the overlay of {}@{}\n", r->vm, r->backup);
  }
  if (Status s = RemoveRunRecord(state_dir, r->name); !s.ok()) return Report(s);
  return 0;
}

int ListRuns(const RunArgs& a) {
  for (const std::string& dir : StateDirs(a)) {
    auto runs = ListRunRecords(dir);
    if (!runs.ok()) return Report(runs.status());
    for (const RunRecord& r : *runs) {
      auto launcher = LauncherFor(r.hypervisor, r.libvirt_uri, StateLayout(dir).RunsDir(), a.qemu);
      fmt::print("{:24} {:8} {:10} {}@{}  {}\n", r.name, r.hypervisor, launcher->State(r), r.vm, r.backup, r.console);
    }
  }
  return 0;
}

}  // namespace

void RegisterRunCommand(CLI::App& app, int* exit_code) {
  auto* c = app.add_subcommand("run", "Start a backup copy as a VM on a hypervisor (libvirt, QEMU; ESXi: the commands)");
  auto a = std::make_shared<RunArgs>();
  c->add_option("REPO", a->repo, "Repository (may be left out: LIVEMOUNT_REPOSITORY, or the configuration's)");
  c->add_option("VM", a->spec, "VM[@BACKUP] to run (BACKUP: latest if left out)");
  c->add_option("--hypervisor", a->hypervisor, "libvirt, qemu (QEMU directly) or esxi (prints the commands)")
      ->capture_default_str();
  c->add_option("--name", a->name, "Name of the recovered VM (default: VM-livemount)");
  c->add_option("--network", a->network, "isolated (no uplink), none, or a host bridge")->capture_default_str();
  c->add_flag("--prestage", a->prestage, "Pre-stage the copy from its profile in the background");
  c->add_option("--mount", a->mount, "Mountpoint of the media agent (started there if none runs)");
  c->add_option("--cache-dir", a->cache_dir, "Read-cache of a media agent started here");
  c->add_option("--state-dir", a->state_dir, "State directory (overlays, run records)");
  c->add_option("--connect", a->connect, "libvirt URI")->capture_default_str();
  c->add_option("--qemu", a->qemu, "QEMU binary (--hypervisor qemu)")->capture_default_str();
  c->add_option("--nfs-host", a->nfs_host, "This host's address as ESXi reaches it (--hypervisor esxi)");
  c->add_option("--datastore", a->datastore, "ESXi datastore name for the export (--hypervisor esxi)")
      ->capture_default_str();
  c->add_option("--stop", a->stop, "Power off and undefine a VM that run started");
  c->add_flag("--discard", a->discard, "With --stop: also drop the copy's overlay (everything the VM wrote)");
  c->add_flag("--list", a->list, "List the VMs run started, and their state");
  c->callback([a, exit_code] {
    if (a->spec.empty() && !a->repo.empty()) {  // `run VM`: the repository is configured
      a->spec = a->repo;
      const char* env = std::getenv("LIVEMOUNT_REPOSITORY");  // set from the configuration when unset
      a->repo = env ? env : "";
    }
    if (a->discard && a->stop.empty()) {
      *exit_code = Report(Status::Invalid("--discard goes with --stop NAME"));
    } else if (!a->stop.empty()) {
      *exit_code = StopRun(*a);
    } else if (a->list) {
      *exit_code = ListRuns(*a);
    } else {
      *exit_code = Start(*a);
    }
  });
}

}  // namespace lm::cli

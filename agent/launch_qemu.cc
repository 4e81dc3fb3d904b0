// `run --hypervisor qemu`: QEMU started directly, where no libvirt is wanted. QEMU
// daemonizes itself once the VM is set up (-daemonize), so a failure to open a disk is
// reported by the start, not later; the serial console is a Unix socket (reach it with
// `socat - UNIX-CONNECT:...`) whose output also goes to a log file.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <map>

#include "agent/launch.h"
#include "base/env.h"
#include "base/subprocess.h"

namespace lm {

namespace {

constexpr const char* kOvmf = "/usr/share/ovmf/OVMF.fd";

// QEMU's name for a controller model (VMware's and libvirt's names).
Result<std::string> ScsiDevice(const std::string& model) {
  static const std::map<std::string, std::string> devices = {
      {"pvscsi", "pvscsi"},       {"vmpvscsi", "pvscsi"},        {"lsilogic", "lsi53c895a"},
      {"lsisas1068", "mptsas1068"}, {"virtio-scsi", "virtio-scsi-pci"}, {"", "lsi53c895a"}};
  auto it = devices.find(model);
  if (it == devices.end()) return Status::Unsupported("SCSI controller model '" + model + "' has no QEMU device");
  return it->second;
}

std::string NicModel(const std::string& m) {
  if (m == "virtio") return "virtio-net-pci";
  if (m == "e1000" || m == "e1000e" || m == "vmxnet3" || m == "rtl8139") return m;
  return "e1000";
}

// A path inside a QEMU option value: commas are doubled.
std::string OptPath(const std::string& p) {
  std::string out;
  for (char c : p) out += c == ',' ? std::string(",,") : std::string(1, c);
  return out;
}

// /proc/PID/cmdline contains `needle`: the pid is still the QEMU we started.
bool IsOurQemu(int64_t pid, const std::string& needle) {
  if (pid <= 0) return false;
  // /proc files have no size: read them as a stream.
  std::ifstream in(fmt::format("/proc/{}/cmdline", pid), std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.find(needle) != std::string::npos;
}

class QemuLauncher : public Launcher {
 public:
  QemuLauncher(std::string run_dir, std::string binary, std::string accel)
      : run_dir_(std::move(run_dir)), binary_(std::move(binary)), accel_(std::move(accel)) {}

  Status Start(const VmConfig& c, RunRecord* r) override {
    QemuPaths p;
    p.pidfile = JoinPath(run_dir_, r->name + ".pid");
    p.console = JoinPath(run_dir_, r->name + ".console");
    p.serial_log = JoinPath(run_dir_, r->name + ".serial.log");
    p.qmp = JoinPath(run_dir_, r->name + ".qmp");
    if (p.console.size() > 100 || p.qmp.size() > 100) {
      return Status::Invalid(run_dir_ + ": too long for QEMU's Unix sockets (at most 100 bytes with the VM name)");
    }
    if (IsOurQemu(r->pid, p.pidfile)) return Status::Exists(r->name + " is running");
    for (const std::string& f : {p.pidfile, p.console, p.qmp}) (void)::unlink(f.c_str());
    LM_RETURN_IF_ERROR(MkdirAll(run_dir_));
    LM_ASSIGN_OR_RETURN(auto args, QemuArgs(c, p, accel_));
    args.insert(args.begin(), binary_);
    std::string err;
    int rc = RunCommand(args, &err);
    if (rc != 0) return Status::IoError(fmt::format("{} did not start {} (exit {}): {}", binary_, r->name, rc, err));
    auto pid = Env::Default()->ReadFile(p.pidfile);
    if (!pid.ok()) return Status::IoError("QEMU wrote no pid file " + p.pidfile);
    r->pid = std::strtoll(pid->c_str(), nullptr, 10);
    r->console = "socat -,raw,echo=0 UNIX-CONNECT:" + p.console;
    r->serial_log = p.serial_log;
    r->qmp = p.qmp;
    return Status::Ok();
  }

  Status Stop(const RunRecord& r) override {
    std::string pidfile = JoinPath(run_dir_, r.name + ".pid");
    if (IsOurQemu(r.pid, pidfile)) {
      // SIGTERM: QEMU stops the VM at once, as pulling its plug, and closes its disks.
      ::kill(static_cast<pid_t>(r.pid), SIGTERM);
      bool gone = WaitUntil(std::chrono::seconds(30), std::chrono::milliseconds(50),
                            [&] { return !IsOurQemu(r.pid, pidfile); });
      if (!gone) {
        ::kill(static_cast<pid_t>(r.pid), SIGKILL);
        WaitUntil(std::chrono::seconds(10), std::chrono::milliseconds(50), [&] { return !IsOurQemu(r.pid, pidfile); });
      }
    }
    for (const char* s : {".pid", ".console", ".qmp"}) (void)::unlink(JoinPath(run_dir_, r.name + s).c_str());
    return Status::Ok();
  }

  std::string State(const RunRecord& r) override {
    return IsOurQemu(r.pid, JoinPath(run_dir_, r.name + ".pid")) ? "running" : "shut off";
  }

 private:
  std::string run_dir_, binary_, accel_;
};

}  // namespace

Result<std::vector<std::string>> QemuArgs(const VmConfig& c, const QemuPaths& p, const std::string& accel) {
  std::vector<std::string> a = {"-name", "guest=" + OptPath(c.name), "-machine", "pc,accel=" + accel,
                                "-m", std::to_string(c.memory_mib), "-smp", std::to_string(c.vcpus),
                                "-nodefaults", "-display", "none", "-vga", "std"};
  if (!c.uuid.empty()) a.insert(a.end(), {"-uuid", c.uuid});
  if (c.firmware == Firmware::kUefi) {
    if (!PathExists(kOvmf)) return Status::Unsupported(c.name + " boots with UEFI: install Debian's ovmf (" + kOvmf + ")");
    a.insert(a.end(), {"-bios", kOvmf});
  }
  for (const VmController& ctl : c.controllers) {
    if (ctl.bus == DiskBus::kScsi) {
      LM_ASSIGN_OR_RETURN(std::string dev, ScsiDevice(ctl.model));
      a.insert(a.end(), {"-device", fmt::format("{},id=scsi{}", dev, ctl.index)});
    } else if (ctl.bus == DiskBus::kSata) {
      a.insert(a.end(), {"-device", fmt::format("ahci,id=sata{}", ctl.index)});
    }
  }
  // Controllers the disks use that the configuration does not declare get the default model.
  auto declared = [&](DiskBus b, int index) {
    for (const VmController& ctl : c.controllers) {
      if (ctl.bus == b && ctl.index == index) return true;
    }
    return false;
  };
  std::map<std::pair<DiskBus, int>, bool> added;
  bool boot_set = false;
  for (size_t i = 0; i < c.disks.size(); i++) {
    const VmDisk& d = c.disks[i];
    std::string id = fmt::format("disk{}", i);
    std::string drive = fmt::format("file={},format={},if=none,id={},cache=writeback", OptPath(d.file),
                                    d.format.empty() ? "raw" : d.format, id);
    if (d.cdrom) drive += ",media=cdrom,readonly=on";
    a.insert(a.end(), {"-drive", drive});
    std::string boot = !d.cdrom && !boot_set ? ",bootindex=1" : "";
    if (!boot.empty()) boot_set = true;
    if ((d.bus == DiskBus::kScsi || d.bus == DiskBus::kSata) && !declared(d.bus, d.controller) &&
        !added[{d.bus, d.controller}]) {
      added[{d.bus, d.controller}] = true;
      a.insert(a.end(), {"-device", d.bus == DiskBus::kScsi ? fmt::format("lsi53c895a,id=scsi{}", d.controller)
                                                            : fmt::format("ahci,id=sata{}", d.controller)});
    }
    switch (d.bus) {
      case DiskBus::kVirtio:
        if (d.cdrom) return Status::Unsupported("a CD-ROM on virtio");
        a.insert(a.end(), {"-device", fmt::format("virtio-blk-pci,drive={}{}", id, boot)});
        break;
      case DiskBus::kScsi:
        a.insert(a.end(), {"-device", fmt::format("{},drive={},bus=scsi{}.0,scsi-id={}{}", d.cdrom ? "scsi-cd" : "scsi-hd",
                                                  id, d.controller, d.unit, boot)});
        break;
      case DiskBus::kSata:
        a.insert(a.end(), {"-device", fmt::format("{},drive={},bus=sata{}.{}{}", d.cdrom ? "ide-cd" : "ide-hd", id,
                                                  d.controller, d.unit, boot)});
        break;
      case DiskBus::kIde:
        a.insert(a.end(), {"-device", fmt::format("{},drive={},bus=ide.{},unit={}{}", d.cdrom ? "ide-cd" : "ide-hd", id,
                                                  d.controller, d.unit, boot)});
        break;
      case DiskBus::kNvme:
        a.insert(a.end(), {"-device", fmt::format("nvme,drive={},serial=livemount{}{}", id, i, boot)});
        break;
    }
  }
  if (c.nics.empty()) a.insert(a.end(), {"-nic", "none"});
  for (const VmNic& n : c.nics) {
    std::string model = NicModel(n.model), mac = n.mac.empty() ? "" : ",mac=" + n.mac;
    // A bridge of the host, or QEMU's user network with restrict=on: the guest reaches
    // neither the host nor any other network (the isolated network of a recovery).
    a.insert(a.end(), {"-nic", n.bridge.empty() ? fmt::format("user,restrict=on,model={}{}", model, mac)
                                                : fmt::format("bridge,br={},model={}{}", OptPath(n.bridge), model, mac)});
  }
  a.insert(a.end(), {"-chardev",
                     fmt::format("socket,id=serial0,path={},server=on,wait=off,logfile={},logappend=off",
                                 OptPath(p.console), OptPath(p.serial_log)),
                     "-serial", "chardev:serial0", "-qmp", fmt::format("unix:{},server=on,wait=off", OptPath(p.qmp)),
                     "-pidfile", p.pidfile, "-daemonize"});
  return a;
}

std::unique_ptr<Launcher> MakeQemuLauncher(const std::string& run_dir, const std::string& qemu_binary,
                                           const std::string& accel) {
  return std::make_unique<QemuLauncher>(run_dir, qemu_binary, accel);
}

}  // namespace lm

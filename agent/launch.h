// Launching a backup copy on a hypervisor (`livemount run`): the copy's own configuration
// (guest/copy_views.h CopyVmConfig) adapted for a recovery, defined and started through
// libvirt or QEMU directly, and later stopped and forgotten.
//
// A recovered VM must never collide with the original still on the production network: it
// gets a new name, a new UUID and new MAC addresses, and its NICs are moved to an isolated
// network (libvirt: a bridge with no uplink and no address, `livemount-isolated`; QEMU:
// user networking with restrict=on) unless the administrator names a bridge or none.
//
// Every run leaves a record, STATE/runs/<name>.json (base/state_layout.h), so `run --stop`
// finds what it started: the hypervisor, the copy, the mount, QEMU's pid and sockets.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "guest/vm_config.h"

namespace lm {

// Names of runs: [A-Za-z0-9._-], 1-64, not starting with '.' or '-' (a domain name, a file name).
Status CheckRunName(const std::string& name);

struct RecoveryOptions {
  std::string name;           // the new VM's name
  std::string network = "isolated";  // "isolated", "none" or a host bridge
  std::string seed;           // makes UUID and MACs repeatable in tests; "" for random
};
// The configuration with a new identity and the network replaced (see above).
VmConfig AdaptForRecovery(VmConfig c, const RecoveryOptions& o);

struct RunRecord {
  std::string name, hypervisor;  // "libvirt" or "qemu"
  std::string vm, backup;        // the copy (VM@BACKUP resolved)
  std::string mountpoint, copy_dir;
  std::string libvirt_uri;       // libvirt
  int64_t pid = 0;               // qemu: QEMU's pid
  std::string console;           // how to reach the console (a command line)
  std::string serial_log;        // the serial console's output, as a file
  std::string qmp;               // qemu: QMP socket
  int64_t started_unix = 0;
};
// STATE/runs/<name>.json, written atomically; Load refuses a record that is not ours.
Status SaveRunRecord(const std::string& state_dir, const RunRecord& r);
Result<RunRecord> LoadRunRecord(const std::string& state_dir, const std::string& name);
Status RemoveRunRecord(const std::string& state_dir, const std::string& name);
Result<std::vector<RunRecord>> ListRunRecords(const std::string& state_dir);

// One hypervisor's way to start and stop a VM.
class Launcher {
 public:
  virtual ~Launcher() = default;
  // Defines and starts the VM (disks are absolute paths on the mount); fills the record's
  // pid, console and serial log. On failure nothing stays defined.
  virtual Status Start(const VmConfig& c, RunRecord* r) = 0;
  // Powers the VM off (as pulling the plug: the overlay keeps what was synced) and removes
  // its definition. A VM already gone is not an error.
  virtual Status Stop(const RunRecord& r) = 0;
  // "running", "shut off", "gone", ...
  virtual std::string State(const RunRecord& r) = 0;
};

// libvirt through its C API (Debian's libvirt0), at `uri` (qemu:///system).
std::unique_ptr<Launcher> MakeLibvirtLauncher(const std::string& uri, const std::string& domain_type);
// QEMU run directly, daemonized, its console on a Unix socket and in a log file under `run_dir`.
std::unique_ptr<Launcher> MakeQemuLauncher(const std::string& run_dir, const std::string& qemu_binary,
                                           const std::string& accel);

// QEMU's command line for a VM (without the binary); what MakeQemuLauncher runs.
struct QemuPaths {
  std::string pidfile, console, serial_log, qmp;
};
Result<std::vector<std::string>> QemuArgs(const VmConfig& c, const QemuPaths& p, const std::string& accel);

// The commands that register and start the copy on ESXi from the mount's NFS export.
std::string EsxiRecipe(const std::string& vm_name, const std::string& vmx_in_copy, const std::string& nfs_host,
                       const std::string& nfs_path, const std::string& datastore);

// "kvm" where /dev/kvm can be used, else "tcg" (QEMU) / "qemu" (libvirt domain type).
bool HostHasKvm();

}  // namespace lm

// NfsExport: serves a live mount over NFS (v3 and v4) so that a hypervisor's datastore
// can point at the media agent. It runs Debian's nfs-ganesha with FSAL VFS on the FUSE
// mountpoint, from a config generated into STATE/export/, as a child of the media agent:
// it starts after the mount is up and stops before it goes down (ganesha holds the
// mount's files open). rpcbind is started if nothing answers on port 111.
//
// File handles: ganesha's VFS handles hold the filesystem id and the kernel's FUSE handle
// (node id + generation). `fsid_type = Major64` keeps the filesystem id the same on every
// mount of the FUSE filesystem (its minor, the anonymous device number, is left out), and
// the inode index (inode_index.h) makes node ids and generations outlive the daemon, so a
// client's handles stay valid across a restart of the media agent and of ganesha.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/control_protocol.h"
#include "base/env.h"
#include "base/status.h"

namespace lm {

struct ExportOptions {
  Env* env = nullptr;                 // required: writes the config
  std::string mountpoint;             // the FUSE mount to export (absolute)
  std::string dir;                    // config, log and pid file: STATE/export
  std::string bind = "0.0.0.0";       // address ganesha listens on
  uint16_t nfs_port = 2049;
  uint16_t mount_port = 20048;        // MOUNT protocol (NFSv3); also registered with rpcbind
  std::vector<std::string> clients;   // hosts/networks that may mount; empty: 127.0.0.1 only
  bool read_only = false;             // export read-only (the mount itself may be writable)
  Status validate() const;
};

// The ganesha.conf for these options (exposed for tests).
std::string GaneshaConfig(const ExportOptions& o);

class NfsExport {
 public:
  // Writes the config, makes sure rpcbind runs, starts ganesha and waits until it serves.
  static Result<std::unique_ptr<NfsExport>> Start(const ExportOptions& o);
  ~NfsExport();  // Stop()
  // SIGTERM to ganesha, SIGKILL after 10 s; waits for it. Safe to call twice.
  void Stop();
  bool running() const;
  const ExportOptions& options() const { return options_; }
  pid_t pid() const { return pid_; }
  control::ExportInfo Describe() const;

 private:
  NfsExport() = default;
  ExportOptions options_;
  pid_t pid_ = -1;
  std::thread keeper_;  // forks ganesha (PR_SET_PDEATHSIG follows this thread) and reaps it
  mutable std::mutex mu_;
  bool exited_ = false;
  int exit_status_ = 0;
};

// What to type on each hypervisor to use an export of `mountpoint` served at `server`.
std::string HypervisorInstructions(const ExportOptions& o, const std::string& server);

// The address hypervisors should use: --bind if set, else the first non-loopback IPv4
// address of this machine ("127.0.0.1" if none).
std::string AdvertisedAddress(const ExportOptions& o);

}  // namespace lm

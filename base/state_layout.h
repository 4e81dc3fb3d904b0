// The one owner of the media agent's state directory layout (as LevelDB's filename.h owns
// a database's file names). Every path under STATE/ is built here, and every name that
// comes from a user or a backup is validated before it becomes part of a path.
//
//   STATE/livemount.log            the media agent's log
//   STATE/profiles/<vm>.json       a VM's learned or picked profile
//   STATE/traces/<vm>/<...>.json   reads recorded by live mounts
//   STATE/overlays/<vm>/<id>/      overlay data files of one backup copy
//   STATE/overlay-meta/            RocksDB: overlay names and attributes (all backup copies)
//   STATE/inodes/                  RocksDB: inode numbers and generations (NFS handles)
//   STATE/export/                  nfs-ganesha's configuration, log and recovery directory
//   STATE/expiry.json              live mount policies: when each copy's overlay is discarded
//   STATE/runs/<name>.json         VMs started by `livemount run` (agent/launch.h), with
//   STATE/runs/<name>.{pid,console,qmp,serial.log}   QEMU's files when run directly
//
// VM names and backup ids are [A-Za-z0-9._-] not starting with '.', so no user-chosen
// name can reach a product file: the product's own entries are either at the top of
// STATE/ or contain '-' and live beside, not inside, the per-VM folders.
#pragma once

#include <string>

#include "base/status.h"

namespace lm {

class StateLayout {
 public:
  explicit StateLayout(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }

  std::string LogFile() const;
  Result<std::string> ProfileFile(const std::string& vm) const;
  Result<std::string> TraceDir(const std::string& vm) const;
  Result<std::string> OverlayDir(const std::string& vm, const std::string& id) const;
  std::string OverlaysDir() const;     // parent of every OverlayDir
  std::string OverlayMetaDir() const;
  std::string InodesDir() const;
  std::string ExportDir() const;
  std::string ExpiryFile() const;  // live mount policies (agent/expiry_policies.h)
  std::string RunsDir() const;
  // STATE/runs/<name><suffix> (".json", ".pid", ...); the name is checked as a VM name.
  Result<std::string> RunFile(const std::string& name, const std::string& suffix) const;

  // Moves what older versions kept elsewhere (STATE/overlays/meta) to where it lives now.
  // Idempotent; a crash between steps leaves either the old or the new layout.
  Status Migrate() const;

 private:
  std::string root_;
};

// Ok, or Invalid naming the rule ("invalid VM name '../x' (letters, digits, ...)").
Status CheckVmName(const std::string& vm);

}  // namespace lm

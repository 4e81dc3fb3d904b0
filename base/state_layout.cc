#include "base/state_layout.h"

#include <cstdio>

#include "base/env.h"
#include "base/names.h"

namespace lm {

Status CheckVmName(const std::string& vm) {
  if (IsValidName(vm)) return Status::Ok();
  return Status::Invalid("invalid VM name '" + vm +
                         "' (letters, digits, '.', '_' and '-', at most 200, not starting with '.')");
}

std::string StateLayout::LogFile() const { return JoinPath(root_, "livemount.log"); }

Result<std::string> StateLayout::ProfileFile(const std::string& vm) const {
  LM_RETURN_IF_ERROR(CheckVmName(vm));
  return JoinPath(root_, "profiles/" + vm + ".json");
}

Result<std::string> StateLayout::TraceDir(const std::string& vm) const {
  LM_RETURN_IF_ERROR(CheckVmName(vm));
  return JoinPath(root_, "traces/" + vm);
}

Result<std::string> StateLayout::OverlayDir(const std::string& vm, const std::string& id) const {
  LM_RETURN_IF_ERROR(CheckVmName(vm));
  if (!IsValidBackupId(id)) return Status::Invalid("invalid backup id '" + id + "'");
  return JoinPath(OverlaysDir(), vm + "/" + id);
}

std::string StateLayout::OverlaysDir() const { return JoinPath(root_, "overlays"); }
std::string StateLayout::OverlayMetaDir() const { return JoinPath(root_, "overlay-meta"); }
std::string StateLayout::InodesDir() const { return JoinPath(root_, "inodes"); }
std::string StateLayout::ExportDir() const { return JoinPath(root_, "export"); }
std::string StateLayout::ExpiryFile() const { return JoinPath(root_, "expiry.json"); }
std::string StateLayout::RunsDir() const { return JoinPath(root_, "runs"); }

Result<std::string> StateLayout::RunFile(const std::string& name, const std::string& suffix) const {
  if (!IsValidName(name)) return Status::Invalid("invalid run name '" + name + "'");
  return JoinPath(RunsDir(), name + suffix);
}

Status StateLayout::Migrate() const {
  // Up to 0.1: the overlay RocksDB sat at STATE/overlays/meta, among the VMs' folders, so
  // a VM named "meta" collided with it. A RocksDB directory has a CURRENT file; a VM
  // folder never does (it holds backup-id folders).
  std::string old_meta = JoinPath(OverlaysDir(), "meta");
  if (PathExists(JoinPath(old_meta, "CURRENT")) && !PathExists(OverlayMetaDir())) {
    if (std::rename(old_meta.c_str(), OverlayMetaDir().c_str()) != 0) {
      return Status::FromErrno(errno, "move " + old_meta + " to " + OverlayMetaDir());
    }
    LM_RETURN_IF_ERROR(Env::Default()->FsyncDir(root_));
  }
  return Status::Ok();
}

}  // namespace lm

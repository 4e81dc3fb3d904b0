// `restore ... --with-overlay --state-dir DIR`: a backup copy restored with the changes a
// running VM made in its overlay, the way back to production (tools/cli/restore_overlay.cc).
#pragma once

#include <memory>
#include <string>

#include "agent/control_protocol.h"
#include "store/manifest.h"
#include "base/status.h"

namespace lm::cli {

// A media agent that serves `state_dir`'s overlays: the running one, or one started on a
// private temporary mountpoint (and stopped, with its temporary cache, when this ends).
class LiveCopySource {
 public:
  // Call before anything in this process starts a thread (a started agent forks).
  static Result<std::unique_ptr<LiveCopySource>> Find(const std::string& repo, const std::string& state_dir);
  ~LiveCopySource();
  const std::string& mountpoint() const { return mountpoint_; }
  bool temporary() const { return !tmp_.empty(); }

 private:
  LiveCopySource() = default;
  std::string mountpoint_, tmp_;
  int pid_ = 0;
};

struct OverlayApplied {
  uint64_t patched = 0, copied = 0, removed = 0, bytes = 0;
};

// Makes `dest`, a restore of `base`, what `copy_dir` (the copy's directory on a mount)
// shows: files the overlay changed get its written ranges and sizes (or are copied whole
// when new or renamed), entries it removed go, directories and symlinks follow, and modes,
// times (owners as root) and user extended attributes are the mount's. `sync`: fsync each.
Status ApplyOverlay(const std::string& copy_dir, const control::ChangesReply& changes, const BackupManifest& base,
                    const std::string& dest, bool sync, OverlayApplied* out);

}  // namespace lm::cli

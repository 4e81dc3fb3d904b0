// Reading a VM directory that someone else may be changing, or attacking, while it is
// backed up. The scan walks from directory descriptors (openat, O_NOFOLLOW): a symlink is
// recorded as a symlink and never followed, and a folder swapped for a symlink mid-walk
// is not entered. Each regular file remembers the device and inode the scan saw; the
// backup opens it again beneath the root, component by component with O_NOFOLLOW, and
// refuses what it opened unless it is that same regular file. So a file replaced by a
// symlink to /etc/shadow during the backup is skipped with a warning, never read.
#pragma once

#include <sys/types.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/env.h"
#include "store/manifest.h"

namespace lm {

struct ScanOptions {
  // Shell patterns (fnmatch); an entry is left out when its relative path or its name
  // matches one. A left-out directory is not walked.
  std::vector<std::string> excludes;
  // And exactly these relative paths (a live mount's views: backup --from-mount).
  std::set<std::string> skip_paths;
};

struct ScannedIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
};

struct ScanResult {
  UniqueFd root;                          // the VM directory, held open for OpenScanned
  std::vector<FileEntry> files;           // sorted, directories before their contents
  std::vector<ScannedIdentity> identity;  // one per entry of `files`
  std::vector<std::string> special;       // sockets, FIFOs, devices: not backed up
  std::vector<std::string> excluded;      // matched an --exclude pattern
  std::vector<std::string> warnings;      // entries that could not be read (skipped)
};

// Scans `root` (which may itself be a symlink: the administrator named it). An entry that
// cannot be read is skipped with a warning; only the root failing is an error.
Result<ScanResult> ScanVmDirectory(const std::string& root, const ScanOptions& options);

// Opens `rel` (a scanned regular file) beneath the scan's root without following any
// symlink, and checks that it is the regular file the scan saw. Invalid on a mismatch.
Result<UniqueFd> OpenScanned(const ScanResult& scan, size_t index);

// Opens `rel` ('/'-separated, no "." or "..") beneath the directory `dirfd`: every
// component is opened with O_NOFOLLOW, so no symlink anywhere on the way is followed.
// `flags` apply to the last component (O_NOFOLLOW is added).
Result<UniqueFd> OpenBeneath(int dirfd, const std::string& rel, int flags, mode_t mode = 0600,
                             const std::string& shown_root = "");

// The user.*, trusted.* and security.* extended attributes of an open file or directory
// (the namespaces a hypervisor or libvirt uses; system.* ACLs are not kept).
Status ReadXattrs(int fd, const std::string& shown, std::map<std::string, std::string>* out);
// Sets them on an open file or directory; a filesystem without xattrs is not an error.
Status WriteXattrs(int fd, const std::string& shown, const std::map<std::string, std::string>& xattrs);

// True for a relative path in normal form: no leading or trailing '/', no empty, "." or
// ".." component. Manifests only hold such paths.
bool IsNormalRelativePath(const std::string& rel);

}  // namespace lm

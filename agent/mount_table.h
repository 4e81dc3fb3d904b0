// The kernel's table of mounts (/proc/self/mountinfo), read to decide whether a path is a
// real livemount mount before the CLI trusts anything it says, and to refuse mounting on
// top of another mount.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace lm {

struct MountEntry {
  std::string mountpoint;     // unescaped
  std::string fstype;         // "fuse.livemount", "ext4", ...
  std::string source;
  std::string super_options;  // "rw,user_id=0,group_id=0,..."
  // FUSE mounts: the user who mounted it (the media agent's user), from user_id=.
  std::optional<uid_t> fuse_owner;
};

inline constexpr const char* kLivemountFsType = "fuse.livemount";

// The mount whose mountpoint is exactly `path` (made absolute without resolving the last
// component, so that a dead FUSE mount, which cannot be stat'ed, is found too). When
// several are stacked, the topmost.
std::optional<MountEntry> FindMount(const std::string& path);

// Every livemount mount, in mount order.
std::vector<MountEntry> LivemountMounts();

// "/a/b/../c" -> "/a/c", relative to the working directory; symlinks in the parent are
// resolved, the last component is not (it may be a dead mount).
std::string AbsoluteMountPath(const std::string& path);

}  // namespace lm

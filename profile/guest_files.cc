#include "profile/guest_files.h"

namespace lm {

std::vector<ProfileEntry> GuestFileEntries(const std::vector<ResolvedFile>& files) {
  std::vector<ProfileEntry> out;
  for (const ResolvedFile& f : files) {
    ProfileEntry e{f.disk_file, {}, "guest-file", 0, f.guest_path};
    for (auto& r : f.ranges.ranges()) e.ranges.push_back(r);
    if (!e.ranges.empty()) out.push_back(std::move(e));
  }
  return out;
}

}  // namespace lm

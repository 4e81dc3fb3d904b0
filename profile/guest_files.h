// Profiles from guest files: the files an administrator picked inside a VM's disks (with
// `profile add-files` or the `browse` file manager), resolved by the guest layer into the
// image ranges a boot or an application needs.
#pragma once

#include <vector>

#include "guest/view.h"
#include "profile/profile.h"

namespace lm {

// Profile entries (source "guest-file", note the guest path) for resolved files, in order
// (Profile::Append numbers them).
std::vector<ProfileEntry> GuestFileEntries(const std::vector<ResolvedFile>& files);

}  // namespace lm

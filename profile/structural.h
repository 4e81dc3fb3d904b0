// Structural profiles: what any boot of a backup copy reads first, found by parsing it
// (configuration files, disk-format metadata, partition tables, filesystem superblocks).
#pragma once

#include <string>
#include <vector>

#include "profile/profile.h"
#include "store/repository.h"

namespace lm {

// The structural profile of a backup copy: small files whole (configuration, descriptors,
// NVRAM); for disk images, the format's metadata (qcow2, VMDK sparse), the guest's partition
// table and the start of each partition. Images it cannot parse are skipped with a note.
Result<Profile> StructuralProfile(Repository& repo, const BackupRef& b, std::vector<std::string>* notes);

}  // namespace lm

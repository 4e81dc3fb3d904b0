// Profile choice: which profile a backup copy is pre-staged from.
#pragma once

#include <string>
#include <vector>

#include "profile/profile.h"
#include "store/repository.h"

namespace lm {

// Which profile a backup copy gets, in this order: the explicit file, the backup copy's own
// (attached at backup time), the VM's learned profile in the state directory, and the
// structural profile (StructuralProfile below).
// `notes` (optional) receives what the structural profile could not parse.
Result<Profile> ChooseProfile(Repository& repo, const BackupRef& b, const std::string& explicit_path,
                              const std::string& state_dir, std::string* chosen,
                              std::vector<std::string>* notes = nullptr);

}  // namespace lm

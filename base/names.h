// The names that become paths: VM names and backup ids, in the repository and in the
// media agent's state directory alike. Anything else is refused before it is joined.
#pragma once

#include <string>

namespace lm {

// VM names: [A-Za-z0-9._-], 1 to 200 bytes, not starting with '.'.
bool IsValidName(const std::string& name);
// Backup ids: as names, and never "latest" (the mount's name for the newest).
bool IsValidBackupId(const std::string& id);

}  // namespace lm

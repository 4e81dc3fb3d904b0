#include "base/names.h"

#include <cctype>

namespace lm {

bool IsValidBackupId(const std::string& id) { return IsValidName(id) && id != "latest"; }

bool IsValidName(const std::string& name) {
  if (name.empty() || name.size() > 200 || name[0] == '.') return false;
  for (char c : name) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace lm

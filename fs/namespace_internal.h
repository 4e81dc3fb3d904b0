// Helpers shared by the files that change the namespace (namespace_write.cc,
// namespace_link.cc, namespace_xattr.cc); not part of the namespace's interface.
#pragma once

#include <sys/stat.h>

#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fs/namespace.h"

namespace lm::ns_internal {

using Changes = std::vector<std::pair<std::string, std::optional<OverlayEntry>>>;

inline OverlayEntry Whiteout() {
  OverlayEntry e;
  e.whiteout = true;
  return e;
}

inline std::string Child(const std::string& rel, const std::string& name) {
  return rel.empty() ? name : rel + "/" + name;
}

inline char SpecialType(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFIFO: return 'p';
    case S_IFSOCK: return 's';
    case S_IFCHR: return 'c';
    case S_IFBLK: return 'b';
  }
  return 0;
}

inline mode_t SpecialBits(char type) {
  switch (type) {
    case 'p': return S_IFIFO;
    case 's': return S_IFSOCK;
    case 'c': return S_IFCHR;
    case 'b': return S_IFBLK;
  }
  return 0;
}

inline Status CheckName(const std::string& name) {
  if (name.size() > kMaxNameLength) return Status::Of(Code::kNameTooLong, "name longer than 255 bytes");
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return Status::Invalid("invalid name '" + name + "'");
  }
  return Status::Ok();
}

inline bool XattrNamespaceSupported(const std::string& name) {
  for (const char* prefix : {"user.", "trusted.", "security."}) {
    size_t n = std::strlen(prefix);
    if (name.size() > n && name.compare(0, n, prefix) == 0) return true;
  }
  return false;
}


}  // namespace lm::ns_internal

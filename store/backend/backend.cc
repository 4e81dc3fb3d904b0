#include "store/backend/backend.h"

namespace lm {

Result<std::vector<ObjectInfo>> Backend::ListAfter(const std::string& prefix, const std::string& start_after) {
  LM_ASSIGN_OR_RETURN(auto all, List(prefix));
  std::vector<ObjectInfo> out;
  for (ObjectInfo& o : all) {
    if (o.name > start_after) out.push_back(std::move(o));
  }
  return out;
}

Status Backend::Create(const std::string& name, std::string_view data) {
  LM_ASSIGN_OR_RETURN(auto writer, NewWriter(name));
  LM_RETURN_IF_ERROR(writer->Append(data));
  return writer->Commit();
}

bool IsValidObjectName(std::string_view name) {
  if (name.empty() || name.size() > 1024) return false;
  size_t start = 0;
  for (;;) {
    size_t slash = name.find('/', start);
    std::string_view c = name.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (c.empty() || c[0] == '.') return false;  // also refuses "." and ".."
    for (char ch : c) {
      if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f || ch == '\\') return false;
    }
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

}  // namespace lm

#include "store/backend/caching_backend.h"

namespace lm {

namespace {
bool EndsWith(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}
}  // namespace

CachingBackend::CachingBackend(std::unique_ptr<Backend> inner, ObjectCache& cache, const std::string& repo_key)
    : inner_(std::move(inner)), cache_(cache), ns_(repo_key + "/") {}

bool CachingBackend::Cacheable(std::string_view name) {
  if (name.rfind("index/", 0) == 0) return EndsWith(name, ".idx");
  if (name.rfind("backups/", 0) != 0) return false;
  // backups/<vm>/<id>/<rest>
  size_t vm_end = name.find('/', 8);
  size_t id_end = vm_end == std::string_view::npos ? vm_end : name.find('/', vm_end + 1);
  if (id_end == std::string_view::npos) return false;
  std::string_view rest = name.substr(id_end + 1);
  if (rest == "backup.json" || rest == "backup.json.sha256" || rest == "profile.json") return true;
  return rest.rfind("files/", 0) == 0 && EndsWith(rest, ".fidx") && rest.find('/', 6) == std::string_view::npos;
}

Result<std::string> CachingBackend::ReadAll(const std::string& name) {
  if (!Cacheable(name)) return inner_->ReadAll(name);
  std::string data;
  if (cache_.Get(Key(name), &data)) {
    hits_++;
    return data;
  }
  misses_++;
  LM_ASSIGN_OR_RETURN(data, inner_->ReadAll(name));
  cache_.Put(Key(name), data);
  return data;
}

Result<std::vector<ObjectInfo>> CachingBackend::List(const std::string& prefix) {
  LM_ASSIGN_OR_RETURN(auto objects, inner_->List(prefix));
  // Copies of objects no longer listed are of deleted objects. An object read after this
  // listing began may be dropped too: that only costs a read again.
  // Both are sorted by name: one walk.
  std::vector<std::string> gone;
  auto listed = objects.begin();
  for (std::string& key : cache_.Keys(Key(prefix))) {
    std::string_view name = std::string_view(key).substr(ns_.size());
    while (listed != objects.end() && listed->name < name) ++listed;
    if (listed == objects.end() || listed->name != name) gone.push_back(std::move(key));
  }
  if (!gone.empty()) {
    dropped_ += gone.size();
    cache_.Erase(gone);
  }
  return objects;
}

std::vector<ObjectInfo> CachingBackend::CachedNames(const std::string& prefix) {
  std::vector<ObjectInfo> out;
  for (const std::string& key : cache_.Keys(Key(prefix))) out.push_back({key.substr(ns_.size()), 0});
  return out;
}

Status CachingBackend::Delete(const std::string& name) {
  LM_RETURN_IF_ERROR(inner_->Delete(name));
  if (Cacheable(name)) cache_.Erase({Key(name)});
  return Status::Ok();
}

}  // namespace lm

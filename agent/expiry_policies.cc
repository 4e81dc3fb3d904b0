#include "agent/expiry_policies.h"

#include <nlohmann/json.hpp>

#include "base/names.h"

namespace lm {

using nlohmann::json;

Result<std::unique_ptr<ExpiryPolicies>> ExpiryPolicies::Open(Env* env, const std::string& file,
                                                             int64_t default_after) {
  std::unique_ptr<ExpiryPolicies> p(new ExpiryPolicies());
  p->env_ = env;
  p->file_ = file;
  p->default_after_ = default_after;
  if (!PathExists(file)) return p;
  LM_ASSIGN_OR_RETURN(std::string text, env->ReadFile(file));
  auto bad = [&](const std::string& why) { return Status::Corrupt(file + ": " + why); };
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  if (!j.contains("version") || j["version"] != 1) return bad("unknown version (expected 1)");
  if (!j.contains("copies") || !j["copies"].is_object()) return bad("no \"copies\" object");
  for (auto& [name, c] : j["copies"].items()) {
    if (!c.is_object() || !c.contains("vm") || !c["vm"].is_string() || !c.contains("id") || !c["id"].is_string() ||
        !c.contains("deadline") || !c["deadline"].is_number_integer()) {
      return bad("copy '" + name + "': expected {\"vm\": ..., \"id\": ..., \"deadline\": <unix seconds>}");
    }
    BackupRef ref{c["vm"].get<std::string>(), c["id"].get<std::string>()};
    if (!IsValidName(ref.vm) || !IsValidBackupId(ref.id) || ref.Name() != name) {
      return bad("copy '" + name + "': not a valid VM@BACKUP");
    }
    p->copies_[name] = {ref, c["deadline"].get<int64_t>()};
  }
  return p;
}

Status ExpiryPolicies::SaveLocked() const {
  json copies = json::object();
  for (auto& [name, c] : copies_) copies[name] = {{"vm", c.first.vm}, {"id", c.first.id}, {"deadline", c.second}};
  json j = {{"version", 1}, {"copies", copies}};
  return env_->WriteFileAtomic(file_, j.dump(2) + "\n");
}

Status ExpiryPolicies::Set(const BackupRef& ref, int64_t deadline_unix) {
  {
    std::lock_guard lock(mu_);
    auto before = copies_;
    copies_[ref.Name()] = {ref, deadline_unix};
    Status s = SaveLocked();
    if (!s.ok()) {
      copies_ = std::move(before);  // what is in memory is what is on disk
      return s;
    }
  }
  if (on_change_) on_change_();
  return Status::Ok();
}

Status ExpiryPolicies::Clear(const BackupRef& ref) {
  std::lock_guard lock(mu_);
  auto it = copies_.find(ref.Name());
  if (it == copies_.end()) return Status::Ok();
  auto kept = *it;
  copies_.erase(it);
  Status s = SaveLocked();
  if (!s.ok()) copies_.insert(kept);
  return s;
}

Status ExpiryPolicies::FirstUse(const BackupRef& ref, int64_t now_unix) {
  {
    std::lock_guard lock(mu_);
    if (default_after_ <= 0 || copies_.count(ref.Name())) return Status::Ok();
  }
  return Set(ref, now_unix + default_after_);
}

std::optional<int64_t> ExpiryPolicies::DeadlineOf(const BackupRef& ref) const {
  std::lock_guard lock(mu_);
  auto it = copies_.find(ref.Name());
  if (it == copies_.end()) return std::nullopt;
  return it->second.second;
}

std::map<std::string, std::pair<BackupRef, int64_t>> ExpiryPolicies::All() const {
  std::lock_guard lock(mu_);
  return copies_;
}

std::vector<BackupRef> ExpiryPolicies::Due(int64_t now_unix) const {
  std::lock_guard lock(mu_);
  std::vector<BackupRef> out;
  for (auto& [name, c] : copies_) {
    if (c.second <= now_unix) out.push_back(c.first);
  }
  return out;
}

std::optional<int64_t> ExpiryPolicies::Earliest() const {
  std::lock_guard lock(mu_);
  std::optional<int64_t> best;
  for (auto& [name, c] : copies_) {
    if (!best || c.second < *best) best = c.second;
  }
  return best;
}

}  // namespace lm

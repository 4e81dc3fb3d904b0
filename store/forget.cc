#include "store/forget.h"

#include <set>

#include "store/leases.h"

namespace lm {

Status ForgetOptions::validate() const {
  if (!copies.empty()) {
    if (!policy.empty()) return Status::Invalid("give either copies by name or a retention policy, not both");
    for (const std::string& c : copies) {
      if (c.find('@') == std::string::npos) return Status::Invalid("'" + c + "': name copies as VM@BACKUP");
    }
    return Status::Ok();
  }
  return policy.validate();
}

Status ForgetCopy(Repository& repo, const BackupRef& b) {
  Backend& backend = repo.backend();
  LM_RETURN_IF_ERROR(backend.Delete(b.Prefix() + "backup.json"));  // the copy is gone from here on
  LM_ASSIGN_OR_RETURN(auto rest, backend.List(b.Prefix()));
  for (const ObjectInfo& o : rest) LM_RETURN_IF_ERROR(backend.Delete(o.name));
  return Status::Ok();
}

Result<ForgetReport> RunForget(Repository& repo, const ForgetOptions& o) {
  LM_RETURN_IF_ERROR(o.validate());
  LM_ASSIGN_OR_RETURN(auto held, HeldCopies(repo.backend(), repo.env()));
  ForgetReport report;
  std::vector<std::pair<std::string, std::vector<RetentionDecision>>> plan;
  if (!o.copies.empty()) {
    std::map<std::string, std::vector<RetentionDecision>> by_vm;
    std::set<std::string> named;
    for (const std::string& spec : o.copies) {
      LM_ASSIGN_OR_RETURN(BackupRef b, repo.ResolveSpec(spec));
      if (!named.insert(b.Name()).second) continue;
      by_vm[b.vm].push_back({b.id, BackupIdTime(b.id), false, {"named"}});
    }
    for (auto& [vm, d] : by_vm) plan.push_back({vm, std::move(d)});
  } else {
    std::vector<std::string> vms;
    if (!o.vm.empty()) {
      vms.push_back(o.vm);
    } else {
      LM_ASSIGN_OR_RETURN(vms, repo.ListVms());
    }
    for (const std::string& vm : vms) {
      LM_ASSIGN_OR_RETURN(auto ids, repo.ListBackupIds(vm));
      std::vector<CopyTime> copies;
      for (auto& id : ids) copies.push_back({id, BackupIdTime(id)});
      plan.push_back({vm, ApplyRetention(std::move(copies), o.policy)});
    }
  }
  for (auto& [vm, decisions] : plan) {
    for (RetentionDecision& d : decisions) {
      ForgetDecision f{vm, d.id, d.time, d.keep, d.reasons, "", false};
      auto h = held.find(BackupRef{vm, d.id}.Name());
      if (!f.keep && h != held.end()) {
        f.keep = true;
        f.held_by = h->second;
        report.held++;
      }
      if (f.keep) {
        report.kept++;
      } else if (!o.dry_run) {
        LM_RETURN_IF_ERROR(ForgetCopy(repo, BackupRef{vm, d.id}).Context("forget " + vm + "@" + d.id));
        f.removed = true;
        report.removed++;
      } else {
        report.removed++;  // would be
      }
      report.copies.push_back(std::move(f));
    }
  }
  return report;
}

}  // namespace lm

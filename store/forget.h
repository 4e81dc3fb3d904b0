// forget: removes backup copies from the repository, by a retention policy (retention.h)
// or by name. Forgetting a copy is one atomic step: its backup.json, the commit point of
// the copy, is deleted first (then readers no longer list it), then its other objects.
// A SIGKILL in between leaves objects no reader lists, which prune removes. Chunks are
// not touched: prune returns their space. A copy a live media agent holds (leases.h) is
// kept, and the report says who holds it.
#pragma once

#include <string>
#include <vector>

#include "store/repository.h"
#include "store/retention.h"

namespace lm {

struct ForgetOptions {
  std::string vm;                    // only this VM ("" every VM), with a policy
  std::vector<std::string> copies;   // or these copies ("VM@BACKUP"), by name
  RetentionPolicy policy;
  bool dry_run = false;
  Status validate() const;
};

struct ForgetDecision {
  std::string vm, id;
  int64_t time = 0;
  bool keep = false;
  std::vector<std::string> reasons;  // the rules that keep it, or "named"
  std::string held_by;               // kept because a media agent holds it
  bool removed = false;
};

struct ForgetReport {
  std::vector<ForgetDecision> copies;  // per VM, newest first
  uint64_t kept = 0, removed = 0, held = 0;
};

Result<ForgetReport> RunForget(Repository& repo, const ForgetOptions& options);

// Removes one backup copy (the atomic step above).
Status ForgetCopy(Repository& repo, const BackupRef& b);

}  // namespace lm

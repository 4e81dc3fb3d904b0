// ExpiryPolicies: live mount policies (Commvault's Live Mount has them). A backup copy with
// a policy has a deadline; once it has passed and no file of the copy is open, the media
// agent discards the copy's overlay and unpins its pre-staged chunks, as `discard` would
// (agent_control.cc, ExpireDue). A copy with open files waits until they are closed.
//
// Deadlines come from `livemount expire MOUNTPOINT VM@BACKUP 8h` (now + 8h), or from
// `mount --expire-after 8h`: a copy first used (opened) without a policy gets now + 8h.
// They are kept in STATE/expiry.json (base/state_layout.h), written atomically, so they
// survive a restart of the agent:
//   {"version": 1, "copies": {"<vm>@<id>": {"vm": "<vm>", "id": "<id>", "deadline": <unix s>}}}
// A file that does not parse, or names an invalid VM or backup id, is an error naming it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "store/repository.h"

namespace lm {

class ExpiryPolicies {
 public:
  // `default_after`: seconds a first-used copy gets (0: none).
  static Result<std::unique_ptr<ExpiryPolicies>> Open(Env* env, const std::string& file, int64_t default_after);

  // Called after each new deadline (the keeper thread looks again). Set before use.
  void OnChange(std::function<void()> f) { on_change_ = std::move(f); }
  // Gives `ref` the deadline `deadline_unix` (replacing any), durably.
  Status Set(const BackupRef& ref, int64_t deadline_unix);
  // Removes the copy's policy (done, or cancelled), durably. No policy: Ok.
  Status Clear(const BackupRef& ref);
  // The copy was opened: with a default, it gets now + default unless it has a policy.
  Status FirstUse(const BackupRef& ref, int64_t now_unix);

  std::optional<int64_t> DeadlineOf(const BackupRef& ref) const;
  // Every policy, by "vm@id".
  std::map<std::string, std::pair<BackupRef, int64_t>> All() const;
  // The copies whose deadline is at or before `now_unix`.
  std::vector<BackupRef> Due(int64_t now_unix) const;
  // The earliest deadline, if any.
  std::optional<int64_t> Earliest() const;

 private:
  ExpiryPolicies() = default;
  Status SaveLocked() const;
  Env* env_ = nullptr;
  std::string file_;
  int64_t default_after_ = 0;
  mutable std::mutex mu_;
  std::map<std::string, std::pair<BackupRef, int64_t>> copies_;
  std::function<void()> on_change_;
};

}  // namespace lm

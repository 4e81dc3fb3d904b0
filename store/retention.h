// Retention: which backup copies of a VM a policy keeps, with restic's semantics.
//
// Copies are walked from the newest to the oldest. --keep-last N keeps the N newest.
// --keep-hourly/daily/weekly/monthly/yearly N each keep the newest copy of each of the N
// most recent hours, days, ISO weeks, months or years that have a copy, in local time (as
// an administrator reads a calendar: a copy at 00:30 after a DST change belongs to that
// day). --keep-within D keeps every copy younger than D, measured from the newest copy
// (not from now, so a VM whose backups stopped keeps its last ones). A copy is kept if
// any rule keeps it; every rule that does is named. N = -1 means unlimited. A policy
// with no rule at all is refused rather than forgetting everything.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace lm {

struct RetentionPolicy {
  int last = 0, hourly = 0, daily = 0, weekly = 0, monthly = 0, yearly = 0;  // -1: unlimited
  int64_t within_seconds = 0;
  bool empty() const;
  Status validate() const;
  std::string Describe() const;  // "keep 7 daily, 4 weekly"
};

struct CopyTime {
  std::string id;
  int64_t time = 0;  // seconds since the epoch
};

struct RetentionDecision {
  std::string id;
  int64_t time = 0;
  bool keep = false;
  std::vector<std::string> reasons;  // "last", "daily", "within 30d", ...
};

// Decisions for one VM's copies (any order in), newest first out.
std::vector<RetentionDecision> ApplyRetention(std::vector<CopyTime> copies, const RetentionPolicy& p);

}  // namespace lm

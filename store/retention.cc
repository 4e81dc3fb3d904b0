#include "store/retention.h"

#include <algorithm>
#include <ctime>

#include "base/units.h"

namespace lm {

namespace {

struct Bucket {
  const char* reason;
  int count;
  // The calendar unit a time falls in (local time); copies in one unit share a value.
  int64_t (*unit)(const struct tm& t);
  int64_t last = INT64_MIN;
};

int64_t Hour(const struct tm& t) { return ((t.tm_year * 1000LL + t.tm_yday) * 100) + t.tm_hour; }
int64_t Day(const struct tm& t) { return t.tm_year * 1000LL + t.tm_yday; }
int64_t Month(const struct tm& t) { return t.tm_year * 100LL + t.tm_mon; }
int64_t Year(const struct tm& t) { return t.tm_year; }
int64_t IsoWeek(const struct tm& t) {
  char buf[16];
  strftime(buf, sizeof buf, "%G%V", &t);  // ISO 8601 week-numbering year and week
  return std::atoll(buf);
}

}  // namespace

bool RetentionPolicy::empty() const {
  return !last && !hourly && !daily && !weekly && !monthly && !yearly && !within_seconds;
}

Status RetentionPolicy::validate() const {
  for (int n : {last, hourly, daily, weekly, monthly, yearly}) {
    if (n < -1) return Status::Invalid("keep counts are -1 (unlimited), 0 or more");
  }
  if (within_seconds < 0) return Status::Invalid("--keep-within must not be negative");
  if (empty()) {
    return Status::Invalid("no retention rule given (--keep-last, --keep-daily, ... or --keep-within); "
                           "nothing is forgotten without one");
  }
  return Status::Ok();
}

std::string RetentionPolicy::Describe() const {
  std::string out;
  auto add = [&](int n, const char* what) {
    if (!n) return;
    out += (out.empty() ? "keep " : ", ") + (n < 0 ? std::string("all") : std::to_string(n)) + " " + what;
  };
  add(last, "last");
  add(hourly, "hourly");
  add(daily, "daily");
  add(weekly, "weekly");
  add(monthly, "monthly");
  add(yearly, "yearly");
  if (within_seconds) out += (out.empty() ? "keep " : ", ") + std::string("within ") + FormatDuration(within_seconds);
  return out;
}

std::vector<RetentionDecision> ApplyRetention(std::vector<CopyTime> copies, const RetentionPolicy& p) {
  // Newest first; copies of one second keep their id order (a "-2" is newer).
  std::sort(copies.begin(), copies.end(), [](const CopyTime& a, const CopyTime& b) {
    return a.time != b.time ? a.time > b.time : a.id > b.id;
  });
  int64_t nr = 0;
  Bucket buckets[] = {
      {"last", p.last, nullptr},       {"hourly", p.hourly, Hour},    {"daily", p.daily, Day},
      {"weekly", p.weekly, IsoWeek},   {"monthly", p.monthly, Month}, {"yearly", p.yearly, Year},
  };
  std::vector<RetentionDecision> out;
  int64_t newest = copies.empty() ? 0 : copies.front().time;
  for (const CopyTime& c : copies) {
    RetentionDecision d{c.id, c.time, false, {}};
    time_t tt = static_cast<time_t>(c.time);
    struct tm local {};
    localtime_r(&tt, &local);
    for (Bucket& b : buckets) {
      if (b.count == 0) continue;
      int64_t value = b.unit ? b.unit(local) : nr;  // "last": every copy is its own unit
      if (value == b.last) continue;
      b.last = value;
      if (b.count > 0) b.count--;
      d.keep = true;
      d.reasons.push_back(b.reason);
    }
    if (p.within_seconds > 0 && c.time > newest - p.within_seconds) {
      d.keep = true;
      d.reasons.push_back("within " + FormatDuration(p.within_seconds));
    }
    nr++;
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace lm

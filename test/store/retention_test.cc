// Retention policies (store/retention.h), restic's semantics, in local time: a table of
// copies and what each rule keeps, across DST changes, month and ISO-year boundaries.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <ctime>

#include "store/retention.h"

using namespace lm;

namespace {

// Central European time with its DST rules, spelled out so no tz database is needed.
struct LocalZone {
  explicit LocalZone(const char* tz) {
    const char* old = std::getenv("TZ");
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~LocalZone() {
    if (had_) setenv("TZ", old_.c_str(), 1);
    else unsetenv("TZ");
    tzset();
  }
  bool had_;
  std::string old_;
};

int64_t Utc(int y, int mo, int d, int h, int mi) {
  struct tm t {};
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = d;
  t.tm_hour = h;
  t.tm_min = mi;
  return timegm(&t);
}

std::vector<CopyTime> Copies(const std::vector<int64_t>& times) {
  std::vector<CopyTime> out;
  for (int64_t t : times) out.push_back({"c" + std::to_string(t), t});
  return out;
}

std::vector<int64_t> Kept(const std::vector<RetentionDecision>& ds) {
  std::vector<int64_t> out;
  for (auto& d : ds)
    if (d.keep) out.push_back(d.time);
  return out;
}

}  // namespace

TEST_CASE("keep-last keeps the newest, and every rule that keeps a copy is named", "[retention]") {
  LocalZone zone("UTC0");
  std::vector<int64_t> t;
  for (int i = 0; i < 10; i++) t.push_back(Utc(2026, 11, 1 + i, 12, 0));
  RetentionPolicy p;
  p.last = 3;
  auto d = ApplyRetention(Copies(t), p);
  REQUIRE(d.size() == 10);
  CHECK(d[0].time == t[9]);  // newest first
  CHECK(Kept(d) == std::vector<int64_t>{t[9], t[8], t[7]});
  p.daily = 5;
  d = ApplyRetention(Copies(t), p);
  CHECK(Kept(d).size() == 5);
  CHECK(d[0].reasons == std::vector<std::string>{"last", "daily"});
  CHECK(d[4].reasons == std::vector<std::string>{"daily"});
  p = {};
  p.last = -1;
  CHECK(Kept(ApplyRetention(Copies(t), p)).size() == 10);
}

TEST_CASE("keep-daily keeps the newest copy of each day, in local time across DST", "[retention]") {
  LocalZone zone("CET-1CEST,M3.5.0,M10.5.0/3");
  // 2026-03-29 is the spring change (23 h day); 2026-10-25 the autumn one (25 h day).
  int64_t mar28_late = Utc(2026, 3, 28, 22, 30);   // 23:30 CET on the 28th
  int64_t mar29_early = Utc(2026, 3, 28, 23, 30);  // 00:30 CET on the 29th (UTC still says 28th)
  int64_t mar29_late = Utc(2026, 3, 29, 21, 30);   // 23:30 CEST on the 29th
  int64_t oct25_early = Utc(2026, 10, 24, 22, 30); // 00:30 CEST on the 25th
  int64_t oct25_late = Utc(2026, 10, 25, 22, 30);  // 23:30 CET on the 25th (a 25 h day)
  RetentionPolicy p;
  p.daily = 10;
  auto kept = Kept(ApplyRetention(Copies({mar28_late, mar29_early, mar29_late}), p));
  CHECK(kept == std::vector<int64_t>{mar29_late, mar28_late});  // 00:30 belongs to the 29th
  kept = Kept(ApplyRetention(Copies({oct25_early, oct25_late}), p));
  CHECK(kept == std::vector<int64_t>{oct25_late});
  p.daily = 1;
  kept = Kept(ApplyRetention(Copies({mar28_late, mar29_early, mar29_late}), p));
  CHECK(kept == std::vector<int64_t>{mar29_late});
  p = {};
  p.hourly = 2;  // the hour 02:00-03:00 does not exist on Mar 29; 01:59 and 03:01 are two hours
  int64_t before = Utc(2026, 3, 29, 0, 59), after = Utc(2026, 3, 29, 1, 1);
  CHECK(Kept(ApplyRetention(Copies({before, after}), p)).size() == 2);
}

TEST_CASE("keep-monthly, keep-weekly and keep-yearly follow the calendar", "[retention]") {
  LocalZone zone("UTC0");
  RetentionPolicy p;
  p.monthly = 2;
  int64_t jan31 = Utc(2026, 1, 31, 23, 0), feb1 = Utc(2026, 2, 1, 1, 0), feb20 = Utc(2026, 2, 20, 1, 0);
  CHECK(Kept(ApplyRetention(Copies({jan31, feb1, feb20}), p)) == std::vector<int64_t>{feb20, jan31});
  // 2026-12-31 (Thursday) and 2027-01-01 (Friday) are both in ISO week 2026-W53.
  p = {};
  p.weekly = 2;
  int64_t dec28 = Utc(2026, 12, 28, 8, 0), dec31 = Utc(2026, 12, 31, 8, 0), jan1 = Utc(2027, 1, 1, 8, 0),
          jan4 = Utc(2027, 1, 4, 8, 0);
  CHECK(Kept(ApplyRetention(Copies({dec28, dec31, jan1, jan4}), p)) == std::vector<int64_t>{jan4, jan1});
  p = {};
  p.yearly = 5;
  CHECK(Kept(ApplyRetention(Copies({dec28, dec31, jan1, jan4}), p)) == std::vector<int64_t>{jan4, dec31});
}

TEST_CASE("keep-within counts from the newest copy, not from now", "[retention]") {
  LocalZone zone("UTC0");
  RetentionPolicy p;
  p.within_seconds = 2 * 86400;
  int64_t newest = Utc(2020, 5, 10, 12, 0);
  auto d = ApplyRetention(Copies({newest, newest - 86400, newest - 2 * 86400, newest - 3 * 86400}), p);
  CHECK(Kept(d) == std::vector<int64_t>{newest, newest - 86400});  // exactly 2d old: out
  CHECK(d[0].reasons == std::vector<std::string>{"within 2d"});
}

TEST_CASE("a policy without rules is refused", "[retention]") {
  RetentionPolicy p;
  CHECK(p.validate().code() == Code::kInvalid);
  p.daily = -2;
  CHECK(p.validate().code() == Code::kInvalid);
  p.daily = 7;
  p.weekly = 4;
  CHECK(p.validate().ok());
  CHECK(p.Describe() == "keep 7 daily, 4 weekly");
}

#include "base/units.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <utility>

namespace lm {

Result<uint64_t> ParseSize(const std::string& text) {
  auto bad = [&] {
    return Status::Invalid("invalid size '" + text + "' (a number with K, M, G or T, like 128K or 10G)");
  };
  size_t i = 0;
  while (i < text.size() && (isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) i++;
  std::string num = text.substr(0, i), unit = text.substr(i);
  if (num.empty() || num.front() == '.' || num.back() == '.' || num.find('.') != num.rfind('.')) return bad();
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (unit.size() == 2 && (unit[1] == 'i' || unit[1] == 'I')) unit.pop_back();
  int shift;
  if (unit.empty()) shift = 0;
  else if (unit == "K" || unit == "k") shift = 10;
  else if (unit == "M" || unit == "m") shift = 20;
  else if (unit == "G" || unit == "g") shift = 30;
  else if (unit == "T" || unit == "t") shift = 40;
  else return bad();
  if (num.size() > 20) return Status::Invalid("size '" + text + "' is too large");
  long double v = std::strtold(num.c_str(), nullptr) * std::ldexp(1.0L, shift);
  if (v > std::ldexp(1.0L, 60)) return Status::Invalid("size '" + text + "' is too large");
  return static_cast<uint64_t>(v);
}

Result<int64_t> ParseDuration(const std::string& text) {
  auto bad = [&] {
    return Status::Invalid("invalid duration '" + text + "' (like 30s, 15m, 2h, 1d, 1w or 1h30m)");
  };
  if (text.empty()) return bad();
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && isdigit(static_cast<unsigned char>(text[i]))) i++;
    if (i == start || i == text.size() || i - start > 9) return bad();
    int64_t n = std::stoll(text.substr(start, i - start));
    int64_t unit;
    switch (text[i]) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      case 'w': unit = 7 * 86400; break;
      default: return bad();
    }
    i++;
    total += n * unit;
    if (total > int64_t{100} * 365 * 86400) return Status::Invalid("duration '" + text + "' is longer than 100 years");
  }
  if (total <= 0) return Status::Invalid("duration '" + text + "' must be at least 1s");
  return total;
}

std::string FormatBytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  char buf[32];
  if (u == 0) snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  else snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

Status CheckRange(const std::string& option, uint64_t value, uint64_t min, uint64_t max) {
  if (value < min || value > max) {
    return Status::Invalid(option + " must be from " + std::to_string(min) + " to " + std::to_string(max) +
                           " (got " + std::to_string(value) + ")");
  }
  return Status::Ok();
}

std::string FormatDuration(int64_t seconds) {
  if (seconds <= 0) return "0s";
  std::string out;
  for (auto [unit, name] : {std::pair<int64_t, char>{7 * 86400, 'w'}, {86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}}) {
    if (seconds >= unit) {
      out += std::to_string(seconds / unit) + name;
      seconds %= unit;
    }
  }
  return out;
}

}  // namespace lm

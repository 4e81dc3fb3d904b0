// Sizes and durations as users type them. Parsing is strict: anything that is not exactly
// a number and a known unit is an error naming the text, never a silent guess.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace lm {

// "4096", "128K", "1.5G", "10GiB", "2T" (binary units); at most 2^60.
Result<uint64_t> ParseSize(const std::string& text);
// "30s", "15m", "2h", "1d", "1w" and combinations ("1h30m"); seconds, at least 1.
Result<int64_t> ParseDuration(const std::string& text);
std::string FormatBytes(uint64_t n);  // "1.5 GiB"
std::string FormatDuration(int64_t seconds);  // "30d", "1w2d", "1h30m": what ParseDuration reads
// An unsigned integer option within [min, max]; the message names the option.
Status CheckRange(const std::string& option, uint64_t value, uint64_t min, uint64_t max);

}  // namespace lm

// RangeReader: reads [off, off+len) of something file-like into out (a backed-up file, a
// disk image's contents, an overlay's base). Short reads are errors, not partial results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "base/status.h"

namespace lm {

using RangeReader = std::function<Status(uint64_t off, size_t len, char* out)>;

}  // namespace lm

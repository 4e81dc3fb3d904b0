// Profiles: which byte ranges of which files of a VM are needed first, in what order, and
// why. JSON, documented byte for byte in profile/FORMAT.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/status.h"

namespace lm {

struct ProfileEntry {
  std::string file;                                      // relative to the VM directory
  std::vector<std::pair<uint64_t, uint64_t>> ranges;     // (offset, length), in order
  std::string source;                                    // "learned", "structural", "guest-file"
  uint64_t order = 0;                                    // lower first
  std::string note;                                      // why (a guest path, "qcow2 L1", ...)
};

struct Profile {
  std::string vm;
  int64_t created_ns = 0;
  std::vector<ProfileEntry> entries;  // sorted by order

  uint64_t Bytes() const;
  // Adds entries after the last one, renumbering their order to keep it so.
  void Append(std::vector<ProfileEntry> more);
};

// Ranges end below 2^60: beyond any disk image, and far from overflowing offset + length.
inline constexpr uint64_t kMaxProfileOffset = uint64_t{1} << 60;

std::string EncodeProfile(const Profile& p);
// `path` names the file in errors.
Result<Profile> DecodeProfile(const std::string& json, const std::string& path);
Result<Profile> LoadProfile(Env* env, const std::string& path);
Status SaveProfile(Env* env, const std::string& path, const Profile& p);  // atomically, making parents

// One recorded first touch: during a live mount, `file` chunk `chunk` was first read
// `ms` milliseconds after the backup copy's first read.
struct TraceTouch {
  std::string file;
  uint64_t chunk = 0;
  uint64_t ms = 0;
};

struct Trace {
  std::string vm, backup;
  int64_t started_ns = 0;
  uint32_t chunk_size = 0;
  std::vector<TraceTouch> touches;  // in first-touch order
};

std::string EncodeTrace(const Trace& t);
Result<Trace> DecodeTrace(const std::string& json, const std::string& path);

// Merges the traces of earlier boots into a learned profile: every chunk any boot touched,
// ordered by its earliest relative time across boots; adjacent chunks of a file coalesce.
Profile LearnProfile(const std::string& vm, const std::vector<Trace>& traces);

}  // namespace lm

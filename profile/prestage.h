// The pre-stager: copies the chunks a profile names, in profile order, from the repository
// into the read-cache, with parallel fetches, so a boot finds them local. `all` goes on with
// every other chunk of the backup copy afterwards (hydration).
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "cache/chunk_source.h"
#include "profile/profile.h"
#include "store/repository.h"
#include "base/state_layout.h"

namespace lm {

struct PrestageOptions {
  unsigned threads = 4;
  bool all = false;
  int64_t pin_until = 0;  // unix seconds; 0: no pin
  bool pin_session = false;  // pin until the owning process (the mount) ends
  std::atomic<uint64_t>* staged_chunks = nullptr;  // counters to add to (a mount's stats)
  std::atomic<uint64_t>* staged_bytes = nullptr;
  const std::atomic<bool>* cancel = nullptr;  // set: stop soon (the mount is ending)
  std::function<void(uint64_t done, uint64_t total)> progress;  // chunks
};

struct PrestageSummary {
  uint64_t profile_chunks = 0;  // distinct non-zero chunks the profile names
  uint64_t total_chunks = 0;    // with `all`: every distinct non-zero chunk staged
  uint64_t already_cached = 0, fetched = 0, failed = 0;
  uint64_t bytes_fetched = 0;   // decompressed bytes brought into the cache
  uint64_t missing_files = 0;   // profile entries naming files this backup lacks
  double seconds = 0;
};

// The profile's chunks of one backup copy, in order, without duplicates or zero chunks.
Result<std::vector<Digest>> ProfileChunks(Repository& repo, const BackupRef& b, const Profile& p,
                                          bool all, uint64_t* profile_chunks, uint64_t* missing);

Result<PrestageSummary> Prestage(Repository& repo, ChunkSource& source, const BackupRef& b, const Profile& p,
                                 const PrestageOptions& options);

// Which profile a backup copy gets, in this order: the explicit file, the backup copy's own
// (attached at backup time), the VM's learned profile in the state directory, and the
// structural profile (StructuralProfile below).
// `notes` (optional) receives what the structural profile could not parse.
Result<Profile> ChooseProfile(Repository& repo, const BackupRef& b, const std::string& explicit_path,
                              const std::string& state_dir, std::string* chosen,
                              std::vector<std::string>* notes = nullptr);

// The structural profile of a backup copy: small files whole (configuration, descriptors,
// NVRAM); for disk images, the format's metadata (qcow2, VMDK sparse), the guest's partition
// table and the start of each partition. Images it cannot parse are skipped with a note.
Result<Profile> StructuralProfile(Repository& repo, const BackupRef& b, std::vector<std::string>* notes);

// STATE/profiles/<vm>.json and STATE/traces/<vm>; Invalid for a name that is not a VM name.
Result<std::string> LearnedProfilePath(const std::string& state_dir, const std::string& vm);
Result<std::string> TraceDir(const std::string& state_dir, const std::string& vm);

}  // namespace lm

// The data agent: turns a VM directory into a new backup copy.
//
// Every regular file is cut into fixed-size chunks. Worker threads read batches of chunks,
// skip holes (SEEK_DATA) and all-zero chunks, hash the rest with SHA-256, and compress and
// append to the current pack only the chunks the repository does not hold yet (dedup across
// all VMs and backups). Packs are committed at ~32 MiB; an index file is
// written for every 16 finished packs and at the end, so a killed backup keeps most of its
// work for the next one; the backup copy's backup.json, its commit point, is written last.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "store/repository.h"

namespace lm {

struct BackupProgress {
  uint64_t total_bytes = 0, done_bytes = 0, new_stored_bytes = 0;
  std::string current_file;
};

struct BackupOptions {
  std::string vm;
  std::string vmdir;
  std::string profile_path;   // optional profile JSON to attach to the backup copy
  std::string profile_json;   // ... or the profile itself (wins over profile_path)
  // zstd level; 0 stores chunks raw. Level 1 is ~25% faster than 3 and stores ~1.5% more
  // on a half-text disk (tools/bench/store_bench.sh).
  int compression_level = 1;
  unsigned threads = 0;       // 0: one per core, at least 2 (at most 256)
  std::vector<std::string> excludes;  // shell patterns matched against path and name
  std::set<std::string> skip_paths;   // exact relative paths left out (without a word)
  uint64_t pack_target_bytes = 32ull << 20;
  std::function<void(const BackupProgress&)> progress;  // called ~10 times a second
  // Chunks whose digest the caller already knows, by file path (relative to vmdir) and
  // chunk index: never read again (backup --from-mount: a live copy's unchanged chunks,
  // taken from the copy it was mounted from). Nullopt: read and hash it as usual.
  std::function<std::optional<Digest>(const std::string& path, uint64_t chunk)> known_chunk;
  // Runs after every file was read, before the copy is committed; an error leaves no copy
  // (backup --from-mount: the live copy changed while it was read).
  std::function<Status()> before_commit;
  // Tests: runs after the directory was scanned and before any file is opened, the
  // moment an attacker would swap a file.
  std::function<void()> after_scan_for_test;
  Status validate() const;
};

struct BackupSummary {
  BackupManifest manifest;
  std::vector<std::string> skipped;   // special files (sockets, devices) not backed up
  std::vector<std::string> excluded;  // matched an exclude pattern
  // Entries skipped because they could not be read or were swapped during the backup, and
  // files that changed while being read: the copy is made, but is not the whole picture.
  std::vector<std::string> warnings;
};

Result<BackupSummary> RunBackup(Repository& repo, const BackupOptions& options);

}  // namespace lm

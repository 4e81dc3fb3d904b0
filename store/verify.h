// verify: checks that every backup copy can be restored.
// Structure: config, index files, every pack's header and record table, every backup copy's
// backup.json and file indexes, and that every chunk a backup uses is in an index whose
// pack holds it. With read_data: every chunk is read, decompressed and its SHA-256 checked
// (as restic check --read-data does). Damage is reported with the backup copies and files
// that use it; leftovers of interrupted backups are notes, not damage.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "store/repository.h"

namespace lm {

struct VerifyOptions {
  bool read_data = false;
  unsigned threads = 0;  // 0: one per core
  std::function<void(uint64_t done, uint64_t total)> progress;  // bytes, with read_data
};

struct ChunkDamage {
  Digest digest;
  std::string pack;   // pack id, or "" if the chunk is in no index
  std::string error;  // what is wrong
  std::vector<std::string> users;  // "vm@id:path (offset N)"
};

struct VerifyReport {
  size_t packs = 0, index_files = 0, backups = 0, chunks = 0;
  uint64_t chunks_read = 0, bytes_read = 0;
  // Chunks in the index that no backup copy uses (after a forget): not damage, what a
  // prune would reclaim; bytes as stored in their packs.
  uint64_t unreferenced_chunks = 0, unreferenced_bytes = 0;
  double seconds = 0;
  std::vector<std::string> errors;  // damaged files of the repository's own structure
  std::vector<ChunkDamage> damaged_chunks;
  std::vector<std::string> notes;   // harmless: leftovers of interrupted backups
  bool ok() const { return errors.empty() && damaged_chunks.empty(); }
};

Result<VerifyReport> RunVerify(Repository& repo, const VerifyOptions& options);

}  // namespace lm

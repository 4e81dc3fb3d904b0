// prune: returns the space of chunks no backup copy uses.
//
// It holds the repository lock exclusively, so no backup runs meanwhile (a backup waits
// for the shared lock; prune refuses, Busy, while one runs): every chunk a backup could
// reference is in a committed copy when prune reads the copies, and no backup starts
// before prune is done. Then, in an order that a crash at any point leaves readable:
//   1. the used set: every chunk of every committed copy (any unreadable copy stops prune);
//   2. packs wholly unused are dropped; the packs with the largest unused share are
//      repacked (their used chunks copied, checked, into new packs) until what stays unused
//      is within --max-unused, and at most --max-repack bytes of packs are rewritten;
//   3. one new index object names every chunk that stays, then the old index objects go;
//   4. the dropped packs go, then what interrupted backups and forgets left.
// Until 3 the old index still names every chunk in a pack that still exists; after it the
// new one does. Readers that meet a deleted pack reload the index (Repository::ReadChunk),
// so a live mount never fails a read because of prune. A killed prune leaves extra data
// (packs in no index, objects of forgotten copies), which the next prune removes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "store/repository.h"

namespace lm {

struct PruneOptions {
  // The unused share of the repository prune may leave (of the used bytes, as restic
  // counts it): the packs with most unused are repacked until the rest is within it.
  double max_unused = 0.05;
  uint64_t max_repack = UINT64_MAX;    // bytes of packs to rewrite in one run
  bool dry_run = false;
  std::function<void(const std::string& step)> progress;
  Status validate() const;
};

struct PruneReport {
  uint64_t packs = 0, packs_deleted = 0, packs_repacked = 0, packs_written = 0;
  uint64_t chunks_used = 0, chunks_unused = 0;
  uint64_t bytes_before = 0, bytes_after = 0;  // pack bytes
  uint64_t bytes_repacked = 0;                 // read and written again
  uint64_t index_written = 0, index_deleted = 0;
  uint64_t leftovers_deleted = 0;              // objects of interrupted backups and forgets
  double seconds = 0;
  uint64_t reclaimed() const { return bytes_before > bytes_after ? bytes_before - bytes_after : 0; }
};

Result<PruneReport> RunPrune(Repository& repo, const PruneOptions& options);

}  // namespace lm

// DiskChunkTable: a repository's chunk index kept on local disk (store/chunk_table.h), so a
// data or media agent's memory stays bounded whatever the repository's size, and a command
// loads only the index objects written since its last run.
//
//   CACHE/chunk-index/<repo key>[-<slot>]/   RocksDB (WAL on, sync off), keys:
//     "M"                           u32 format (1), u32 current generation
//     "c" <gen u32 BE> <digest 32>  u8 pack id[16], u64 offset, u32 stored, u32 raw, u8 codec
//     "p" <gen u32 BE> <pack id 16> empty: a pack some source names
//     "s" <gen u32 BE> <source>     "\0" loaded, or "\1" and what was wrong with it
//   (integers little-endian unless marked BE)
//
// A source's entries, its packs and its "s" key go in one write batch, so after a crash a
// source is either all there or loaded again. A rebuild (after a prune) fills generation
// gen+1 beside the current one, then one write makes it current, and the old one's keys
// are dropped with range deletes; keys of any other generation are dropped at open (a
// rebuild a crash cut short). Memory is bounded by a block cache with the bloom filters and
// index blocks charged to it (partitioned), and two memtables.
//
// Several processes may use one repository from one cache directory (a media agent and
// backups on the same host): each RocksDB is one process's, so a process takes the first
// free of a few slots, each a full copy kept up to date when used.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "store/chunk_table.h"

namespace lm {

struct DiskChunkTableOptions {
  size_t block_cache_bytes = 32ull << 20;
  size_t write_buffer_bytes = 16ull << 20;
  int slots = 4;  // copies for processes that use the repository at once
  Status validate() const;
};

// Opens the table of `repo_key` in CACHE_DIR/chunk-index, in the first slot no other
// process holds; Busy when every slot is held.
Result<std::unique_ptr<ChunkTable>> OpenDiskChunkTable(const std::string& cache_dir, const std::string& repo_key,
                                                       DiskChunkTableOptions options = {});

// The opener a composition root passes in RepoOptions::chunk_table: the disk table in
// `cache_dir`, or, when that cannot be used (every slot held, a directory this user may
// not write, a full disk), the index in memory, with a warning.
ChunkTableOpener DiskChunkTableOpener(const std::string& cache_dir, DiskChunkTableOptions options = {});

}  // namespace lm

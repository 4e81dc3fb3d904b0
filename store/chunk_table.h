// ChunkTable: where a ChunkIndex keeps what it learned from the repository's index objects:
// digest -> (pack, offset, lengths), and which index objects ("sources") it holds.
//
// Two kinds: MemoryChunkTable (below; a hash table, about 100 B per chunk, gone when the
// process ends) and, for repositories of many millions of chunks, an on-disk table in the
// data or media agent's cache directory (cache/chunk_index_db.h: bounded memory, kept
// across runs so a command loads only the index objects written since the last one).
//
// A table is a copy of what the repository's index objects say, never the only record of
// anything: it may be dropped at any time and rebuilt from the repository.
//
// Rules every kind keeps (ChunkIndex relies on them):
//  - AddSource is atomic: after a crash a source is there with all its entries, or not at
//    all (and is then loaded again);
//  - a digest in several sources (two backups stored the same chunk) has one of their
//    locations, any one: each is valid until a prune, after which the index is rebuilt;
//  - every method is safe to call from several threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/status.h"
#include "store/digest.h"
#include "store/pack.h"

namespace lm {

struct ChunkLocation {
  uint32_t stored_len = 0;
  uint32_t raw_len = 0;
  Codec codec = Codec::kNone;
  uint64_t offset = 0;
};

// One index file's worth of entries, grouped by pack.
struct IndexFileContents {
  std::vector<std::pair<PackId, std::vector<PackEntry>>> packs;
};

class ChunkTable {
 public:
  virtual ~ChunkTable() = default;
  // The entries of one source: an index object (by its name), or the table a pack carries
  // itself (named "packs/<id>", after a damaged index object).
  virtual Status AddSource(const std::string& source, const IndexFileContents& contents) = 0;
  // A source that could not be read or decoded: remembered with what was wrong, so it is
  // reported (BadSources) and not read again.
  virtual Status AddBadSource(const std::string& source, const std::string& error) = 0;
  virtual bool HasSource(const std::string& source) const = 0;
  // Every source held, good or bad, sorted.
  virtual std::vector<std::string> Sources() const = 0;
  // The errors of the bad ones (memory: in the order added; disk: by source name).
  virtual std::vector<std::string> BadSources() const = 0;
  virtual bool Find(const Digest& d, ChunkLocation* loc, PackId* pack) const = 0;
  virtual bool HasPack(const PackId& id) const = 0;
  virtual uint64_t size() const = 0;  // distinct digests
  // Calls fn for each digest once, with one of its locations; stops at the first false.
  virtual void ForEach(const std::function<bool(const PackId&, const PackEntry&)>& fn) const = 0;
  // An empty table of the same kind that takes this one's place when Commit()ed: ChunkIndex
  // fills it while readers keep using this one (a rebuild after a prune).
  virtual Result<std::unique_ptr<ChunkTable>> NewGeneration() = 0;
  // Makes this table (from NewGeneration) the one a later open finds, and lets the table it
  // replaces go (its space is freed once nobody uses it).
  virtual Status Commit() = 0;
  // "memory", or where the table lives (for stats and logs).
  virtual std::string Describe() const = 0;
};

// Opens the table of the repository whose key is `repo_key` (32 hex characters: its
// location and config id, the key the metadata cache uses). The composition root passes
// one (RepoOptions::chunk_table); without one, a repository keeps its index in memory.
using ChunkTableOpener = std::function<Result<std::unique_ptr<ChunkTable>>(const std::string& repo_key)>;

class MemoryChunkTable : public ChunkTable {
 public:
  Status AddSource(const std::string& source, const IndexFileContents& contents) override;
  Status AddBadSource(const std::string& source, const std::string& error) override;
  bool HasSource(const std::string& source) const override;
  std::vector<std::string> Sources() const override;
  std::vector<std::string> BadSources() const override;
  bool Find(const Digest& d, ChunkLocation* loc, PackId* pack) const override;
  bool HasPack(const PackId& id) const override;
  uint64_t size() const override;
  void ForEach(const std::function<bool(const PackId&, const PackEntry&)>& fn) const override;
  Result<std::unique_ptr<ChunkTable>> NewGeneration() override;
  Status Commit() override { return Status::Ok(); }
  std::string Describe() const override { return "memory"; }

 private:
  // Packs by number, so an entry is 24 bytes besides its digest.
  struct Entry {
    uint32_t pack_no;
    uint32_t stored_len;
    uint32_t raw_len;
    Codec codec;
    uint64_t offset;
  };
  mutable std::shared_mutex mu_;
  std::unordered_map<Digest, Entry, DigestHash> map_;
  std::vector<PackId> packs_;
  std::unordered_map<PackId, uint32_t> pack_nos_;
  std::unordered_set<std::string> sources_;
  std::vector<std::string> bad_;
};

}  // namespace lm

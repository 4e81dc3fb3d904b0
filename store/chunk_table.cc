#include "store/chunk_table.h"

#include <algorithm>
#include <mutex>

namespace lm {

Status MemoryChunkTable::AddSource(const std::string& source, const IndexFileContents& contents) {
  std::unique_lock lock(mu_);
  if (!sources_.insert(source).second) return Status::Ok();
  for (auto& [id, entries] : contents.packs) {
    auto [it, added] = pack_nos_.try_emplace(id, uint32_t(packs_.size()));
    if (added) packs_.push_back(id);
    for (const PackEntry& e : entries) {
      map_.try_emplace(e.digest, Entry{it->second, e.stored_len, e.raw_len, e.codec, e.offset});
    }
  }
  return Status::Ok();
}

Status MemoryChunkTable::AddBadSource(const std::string& source, const std::string& error) {
  std::unique_lock lock(mu_);
  if (sources_.insert(source).second) bad_.push_back(error);
  return Status::Ok();
}

bool MemoryChunkTable::HasSource(const std::string& source) const {
  std::shared_lock lock(mu_);
  return sources_.count(source) != 0;
}

std::vector<std::string> MemoryChunkTable::Sources() const {
  std::shared_lock lock(mu_);
  std::vector<std::string> out(sources_.begin(), sources_.end());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> MemoryChunkTable::BadSources() const {
  std::shared_lock lock(mu_);
  return bad_;
}

bool MemoryChunkTable::Find(const Digest& d, ChunkLocation* loc, PackId* pack) const {
  std::shared_lock lock(mu_);
  auto it = map_.find(d);
  if (it == map_.end()) return false;
  if (loc) *loc = ChunkLocation{it->second.stored_len, it->second.raw_len, it->second.codec, it->second.offset};
  if (pack) *pack = packs_[it->second.pack_no];
  return true;
}

bool MemoryChunkTable::HasPack(const PackId& id) const {
  std::shared_lock lock(mu_);
  return pack_nos_.count(id) != 0;
}

uint64_t MemoryChunkTable::size() const {
  std::shared_lock lock(mu_);
  return map_.size();
}

void MemoryChunkTable::ForEach(const std::function<bool(const PackId&, const PackEntry&)>& fn) const {
  std::shared_lock lock(mu_);
  for (auto& [d, e] : map_) {
    if (!fn(packs_[e.pack_no], PackEntry{d, e.offset, e.stored_len, e.raw_len, e.codec})) return;
  }
}

Result<std::unique_ptr<ChunkTable>> MemoryChunkTable::NewGeneration() {
  return std::unique_ptr<ChunkTable>(new MemoryChunkTable);
}

}  // namespace lm

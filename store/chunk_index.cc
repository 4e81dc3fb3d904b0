#include "store/chunk_index.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <set>
#include <thread>

#include "base/bytes.h"
#include "base/env.h"

namespace lm {

namespace {
constexpr size_t kIndexEntrySize = 64;

int64_t WallNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string EncodeIndexFile(const IndexFileContents& c) {
  uint64_t n = 0;
  for (auto& [id, entries] : c.packs) n += entries.size();
  std::string s;
  s.reserve(24 + c.packs.size() * 16 + n * kIndexEntrySize + 32);
  PutBytes(&s, kIndexMagic, 8);
  PutU32(&s, 1);
  PutU32(&s, static_cast<uint32_t>(c.packs.size()));
  PutU64(&s, n);
  for (auto& [id, entries] : c.packs) AppendPackIdBytes(id, &s);  // ids of PackWriter: always well-formed
  for (uint32_t p = 0; p < c.packs.size(); p++) {
    for (const PackEntry& e : c.packs[p].second) {
      PutBytes(&s, e.digest.bytes.data(), 32);
      PutU32(&s, p);
      PutU32(&s, 0);
      PutU64(&s, e.offset);
      PutU32(&s, e.stored_len);
      PutU32(&s, e.raw_len);
      PutU8(&s, static_cast<uint8_t>(e.codec));
      PutZeros(&s, 7);
    }
  }
  Digest sum = Digest::Of(s);
  PutBytes(&s, sum.bytes.data(), 32);
  return s;
}

Result<IndexFileContents> DecodeIndexFile(std::string_view data, const std::string& path) {
  if (data.size() < 24 + 32) return Status::Corrupt(path + ": too short to be an index file");
  if (std::memcmp(data.data(), kIndexMagic, 8) != 0) return Status::Corrupt(path + ": bad magic");
  Digest want;
  std::memcpy(want.bytes.data(), data.data() + data.size() - 32, 32);
  std::string_view body = data.substr(0, data.size() - 32);
  if (Digest::Of(body) != want) return Status::Corrupt(path + ": checksum mismatch");
  ByteReader r(body);
  r.Take(8);
  uint32_t version = r.U32();
  if (version != 1) return Status::Unsupported(path + ": index version " + std::to_string(version));
  uint32_t npacks = r.U32();
  uint64_t n = r.U64();
  if (r.remaining() != npacks * 16ull + n * kIndexEntrySize) {
    return Status::Corrupt(path + ": entry counts do not match the file size");
  }
  IndexFileContents c;
  c.packs.resize(npacks);
  for (auto& [id, entries] : c.packs) id = PackIdFromBytes(r.Take(16));
  for (uint64_t i = 0; i < n; i++) {
    PackEntry e;
    r.Copy(e.digest.bytes.data(), 32);
    uint32_t p = r.U32();
    r.U32();
    e.offset = r.U64();
    e.stored_len = r.U32();
    e.raw_len = r.U32();
    e.codec = static_cast<Codec>(r.U8());
    r.Take(7);
    if (p >= npacks) return Status::Corrupt(path + ": entry names pack #" + std::to_string(p));
    c.packs[p].second.push_back(e);
  }
  return c;
}

ChunkIndex::ChunkIndex() : table_(new MemoryChunkTable) {}

void ChunkIndex::Use(std::unique_ptr<ChunkTable> table) {
  int64_t now = WallNowNs(), newest = 0;
  for (const std::string& name : table->Sources()) newest = std::max(newest, IndexNameTime(name, now));
  std::unique_lock lock(mu_);
  table_ = std::move(table);
  newest_name_ns_ = newest;
}

Status ChunkIndex::Add(const std::string& source, const IndexFileContents& contents) {
  std::shared_lock lock(mu_);
  return table_->AddSource(source, contents);
}

std::string NewIndexName(int64_t now_ns) {
  char t[17];
  std::snprintf(t, sizeof t, "%016llx", static_cast<unsigned long long>(now_ns));
  return "index/" + std::string(t) + RandomHex(8) + ".idx";
}

int64_t IndexNameTime(const std::string& name, int64_t now_ns) {
  constexpr int64_t k2020 = 1577836800LL * 1000000000LL, kDay = 86400LL * 1000000000LL;
  if (name.size() != 6 + 32 + 4 || name.rfind("index/", 0) != 0) return 0;
  uint64_t t = 0;
  for (size_t i = 6; i < 6 + 16; i++) {
    char c = name[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return 0;
    t = t << 4 | uint64_t(v);
  }
  if (t < uint64_t(k2020) || t > uint64_t(now_ns + kDay)) return 0;
  return int64_t(t);
}

Status ChunkIndex::LoadNewest(Backend& backend, const RepoCrypto& crypto, int64_t now_ns, bool* found_bad) {
  int64_t newest;
  {
    std::shared_lock lock(mu_);
    newest = newest_name_ns_;
  }
  if (newest == 0) return LoadNew(backend, crypto, found_bad);
  constexpr int64_t kHour = 3600LL * 1000000000LL;
  char t[17];
  std::snprintf(t, sizeof t, "%016llx", static_cast<unsigned long long>(newest - kHour));
  LM_ASSIGN_OR_RETURN(auto objects, backend.ListAfter("index/", "index/" + std::string(t)));
  return LoadListed(backend, crypto, objects, now_ns, found_bad);
}

Status ChunkIndex::LoadNamed(Backend& backend, const RepoCrypto& crypto, const std::vector<ObjectInfo>& objects,
                             bool* found_bad) {
  return LoadListed(backend, crypto, objects, WallNowNs(), found_bad);
}

Status ChunkIndex::LoadNew(Backend& backend, const RepoCrypto& crypto, bool* found_bad, bool* gone) {
  LM_ASSIGN_OR_RETURN(auto objects, backend.List("index/"));
  if (gone) {
    std::set<std::string> listed;
    for (const ObjectInfo& o : objects) listed.insert(o.name);
    std::shared_lock lock(mu_);
    *gone = false;
    for (const std::string& s : table_->Sources()) {
      if (s.rfind("index/", 0) == 0 && !listed.count(s)) *gone = true;
    }
  }
  return LoadListed(backend, crypto, objects, WallNowNs(), found_bad);
}

Status ChunkIndex::LoadListed(Backend& backend, const RepoCrypto& crypto, const std::vector<ObjectInfo>& objects,
                              int64_t now_ns, bool* found_bad) {
  if (found_bad) *found_bad = false;
  std::vector<std::string> names;
  std::shared_lock lock(mu_);  // the table stays while this loads into it (Reload waits)
  for (const ObjectInfo& o : objects) {
    const std::string& name = o.name;
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".idx") != 0) continue;
    if (!table_->HasSource(name)) names.push_back(name);
  }
  // Several reads at once: on an object store each is a round trip.
  std::atomic<size_t> next{0};
  std::atomic<bool> bad{false};
  std::atomic<int64_t> newest{0};
  std::mutex error_mu;
  Status error;
  auto load = [&] {
    for (size_t i; (i = next++) < names.size();) {
      const std::string& name = names[i];
      std::string path = backend.Describe(name);
      auto data = backend.ReadAll(name);
      if (!data.ok() && data.status().code() == Code::kNotFound) continue;  // raced a delete
      if (data.ok()) data = crypto.OpenObject(name, std::move(data).value(), path);
      Result<IndexFileContents> c = data.ok() ? DecodeIndexFile(*data, path)
                                              : Result<IndexFileContents>(data.status());
      Status s = c.ok() ? table_->AddSource(name, *c) : table_->AddBadSource(name, c.status().message());
      if (!s.ok()) {
        std::lock_guard l(error_mu);
        if (error.ok()) error = s;
        next = names.size();  // the table cannot take more: stop
        continue;
      }
      int64_t t = IndexNameTime(name, now_ns);
      for (int64_t seen = newest; t > seen && !newest.compare_exchange_weak(seen, t);) {
      }
      if (!c.ok()) bad = true;
    }
  };
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < std::min<size_t>(kLoadThreads, names.size()); t++) helpers.emplace_back(load);
  load();
  for (auto& t : helpers) t.join();
  lock.unlock();
  {
    std::unique_lock w(mu_);
    newest_name_ns_ = std::max<int64_t>(newest_name_ns_, newest);
  }
  if (found_bad) *found_bad = bad;
  return error;
}

Status ChunkIndex::Reload(Backend& backend, const RepoCrypto& crypto, bool* found_bad) {
  std::unique_ptr<ChunkTable> table;
  {
    std::shared_lock lock(mu_);
    LM_ASSIGN_OR_RETURN(table, table_->NewGeneration());
  }
  ChunkIndex fresh;
  fresh.Use(std::move(table));
  LM_RETURN_IF_ERROR(fresh.LoadNew(backend, crypto, found_bad));
  std::unique_lock lock(mu_);
  LM_RETURN_IF_ERROR(fresh.table_->Commit());
  table_ = std::move(fresh.table_);
  newest_name_ns_ = fresh.newest_name_ns_;
  return Status::Ok();
}

bool ChunkIndex::Find(const Digest& d, ChunkLocation* loc, PackId* pack) const {
  std::shared_lock lock(mu_);
  return table_->Find(d, loc, pack);
}

std::vector<std::string> ChunkIndex::BadFiles() const {
  std::shared_lock lock(mu_);
  return table_->BadSources();
}

bool ChunkIndex::HasPack(const PackId& id) const {
  std::shared_lock lock(mu_);
  return table_->HasPack(id);
}

bool ChunkIndex::Contains(const Digest& d) const { return Find(d, nullptr, nullptr); }

size_t ChunkIndex::size() const {
  std::shared_lock lock(mu_);
  return table_->size();
}

void ChunkIndex::ForEach(const std::function<bool(const PackId&, const PackEntry&)>& fn) const {
  std::shared_lock lock(mu_);
  table_->ForEach(fn);
}

std::vector<std::pair<PackId, PackEntry>> ChunkIndex::AllEntries() const {
  std::vector<std::pair<PackId, PackEntry>> out;
  ForEach([&](const PackId& p, const PackEntry& e) {
    out.emplace_back(p, e);
    return true;
  });
  return out;
}

std::string ChunkIndex::Describe() const {
  std::shared_lock lock(mu_);
  return table_->Describe();
}

}  // namespace lm

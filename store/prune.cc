#include "store/prune.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <unordered_set>

#include "store/leases.h"

namespace lm {

namespace {

constexpr uint64_t kNewPackBytes = 32ull << 20;

struct PackPlan {
  uint64_t size = 0;
  std::vector<PackEntry> live;  // entries of used chunks the index places here
  uint64_t live_bytes = 0;      // their records
};

// Every chunk any committed copy uses. Any copy that cannot be read stops prune: deleting
// data on partial knowledge could destroy what that copy needs.
Result<std::unordered_set<Digest, DigestHash>> UsedChunks(Repository& repo) {
  std::unordered_set<Digest, DigestHash> used;
  LM_ASSIGN_OR_RETURN(auto vms, repo.ListVms());
  for (const std::string& vm : vms) {
    LM_ASSIGN_OR_RETURN(auto ids, repo.ListBackupIds(vm));
    for (const std::string& id : ids) {
      BackupRef b{vm, id};
      auto m = repo.LoadManifest(b);
      if (!m.ok()) return m.status().Context("prune stopped: backup copy " + b.Name() + " is unreadable");
      for (const FileEntry& f : m->files) {
        if (f.type != FileType::kFile) continue;
        auto fc = repo.LoadFileChunks(b, f);
        if (!fc.ok()) return fc.status().Context("prune stopped: " + b.Name() + ":" + f.path + " is unreadable");
        for (const Digest& d : fc->digests)
          if (!d.IsZero()) used.insert(d);
      }
    }
  }
  return used;
}

// Objects no reader lists and no writer can still be writing (prune holds the lock):
// objects of copies without backup.json, temporary files, leases of dead holders.
Result<std::vector<std::string>> Leftovers(Repository& repo, std::vector<std::string>* partial) {
  Backend& be = repo.backend();
  std::vector<std::string> out;
  LM_ASSIGN_OR_RETURN(auto vms, repo.ListVms());
  for (const std::string& vm : vms) {
    LM_ASSIGN_OR_RETURN(auto ids, repo.ListBackupIds(vm));
    std::set<std::string> committed(ids.begin(), ids.end());
    LM_ASSIGN_OR_RETURN(auto objects, be.List("backups/" + vm + "/"));
    size_t skip = 8 + vm.size() + 1;
    for (const ObjectInfo& o : objects) {
      if (!committed.count(o.name.substr(skip, o.name.find('/', skip) - skip))) out.push_back(o.name);
    }
  }
  LM_ASSIGN_OR_RETURN(auto leases, ReadLeases(be));
  for (const Lease& l : leases)
    if (!LeaseLive(l, repo.env())) out.push_back(l.object);
  LM_ASSIGN_OR_RETURN(*partial, be.ListPartial(""));
  return out;
}

// Checks every record of `live` (sorted by offset) in `span`, which starts at pack offset
// `from`, before it is copied (CheckChunkRecord), on every core.
Status CheckRecords(const RepoCrypto& crypto, const std::string& span, uint64_t from, const std::vector<PackEntry>& live,
                    const std::string& where) {
  unsigned n = std::max(1u, std::min<unsigned>(std::thread::hardware_concurrency(), 8));
  std::vector<Status> results(n);
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < n; t++) {
    pool.emplace_back([&, t] {
      for (size_t i = t; i < live.size() && results[t].ok(); i += n) {
        const PackEntry& e = live[i];
        std::string_view record(span.data() + (e.offset - from), kRecordHeaderSize + e.stored_len);
        results[t] = CheckChunkRecord(crypto, record, e, where + " offset " + std::to_string(e.offset));
      }
    });
  }
  for (auto& th : pool) th.join();
  for (auto& s : results) LM_RETURN_IF_ERROR(s);
  return Status::Ok();
}

}  // namespace

Status PruneOptions::validate() const {
  if (!(max_unused >= 0 && max_unused <= 1)) return Status::Invalid("--max-unused must be 0% to 100%");
  if (max_repack == 0) return Status::Invalid("--max-repack must be above 0");
  return Status::Ok();
}

Result<PruneReport> RunPrune(Repository& repo, const PruneOptions& o) {
  LM_RETURN_IF_ERROR(o.validate());
  auto start = std::chrono::steady_clock::now();
  auto step = [&](const std::string& s) {
    if (o.progress) o.progress(s);
  };
  Backend& be = repo.backend();
  LM_ASSIGN_OR_RETURN(auto lock, be.Lock(LockMode::kExclusive));
  LM_RETURN_IF_ERROR(repo.Reload());
  if (!repo.index().BadFiles().empty()) {
    return Status::Corrupt(repo.index().BadFiles().front() +
                           "; prune needs a sound index (livemount verify names what is damaged)");
  }
  PruneReport r;
  step("reading the backup copies");
  LM_ASSIGN_OR_RETURN(auto used, UsedChunks(repo));
  LM_ASSIGN_OR_RETURN(auto old_index, be.List("index/"));
  LM_ASSIGN_OR_RETURN(auto pack_objects, be.List("packs/"));
  std::map<PackId, PackPlan> packs;
  for (const ObjectInfo& obj : pack_objects) {
    PackId id;
    if (ParsePackName(obj.name, &id)) packs[id].size = obj.size;
  }
  std::unordered_set<Digest, DigestHash> placed;
  for (auto& [id, e] : repo.index().AllEntries()) {
    if (!used.count(e.digest)) {
      r.chunks_unused++;
      continue;
    }
    auto p = packs.find(id);
    if (p == packs.end()) {
      return Status::Corrupt(be.Describe(PackRelPath(id)) + " is missing but holds used chunk " +
                             e.digest.ShortHex() + "; prune stopped (run livemount verify)");
    }
    p->second.live.push_back(e);
    p->second.live_bytes += kRecordHeaderSize + e.stored_len;
    placed.insert(e.digest);
  }
  for (const Digest& d : used) {
    if (!placed.count(d)) {
      return Status::Corrupt("used chunk " + d.ShortHex() + " is in no index; prune stopped (run livemount verify)");
    }
  }
  r.chunks_used = used.size();

  // 2. What goes, what is rewritten: packs with nothing used go; of the others, the most
  // wasteful are repacked until the unused bytes left are within --max-unused of the used
  // ones (restic's meaning), so space returns without rewriting everything.
  std::vector<PackId> drop, repack;
  struct Candidate {
    PackId id;
    uint64_t size, unused;
  };
  std::vector<Candidate> candidates;
  uint64_t used_total = 0, unused_total = 0;
  for (auto& [id, p] : packs) {
    r.packs++;
    r.bytes_before += p.size;
    if (p.live.empty()) {
      drop.push_back(id);
      continue;
    }
    uint64_t overhead = kPackHeaderSize + kPackFooterSize + p.live.size() * kPackEntrySize;
    uint64_t unused = p.size > p.live_bytes + overhead ? p.size - p.live_bytes - overhead : 0;
    used_total += p.live_bytes;
    unused_total += unused;
    if (unused > 0) candidates.push_back({id, p.size, unused});
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return a.unused * b.size > b.unused * a.size;  // highest unused share first
  });
  double allowed = o.max_unused >= 1 ? 1e300 : o.max_unused * double(used_total) / (1 - o.max_unused);
  uint64_t repack_budget = o.max_repack;
  for (const Candidate& c : candidates) {
    if (double(unused_total) <= allowed) break;
    if (c.size > repack_budget) continue;
    repack.push_back(c.id);
    repack_budget -= c.size;
    unused_total -= c.unused;
    r.bytes_repacked += packs[c.id].live_bytes;
  }
  r.packs_deleted = drop.size();
  r.packs_repacked = repack.size();
  std::vector<std::string> partial;
  LM_ASSIGN_OR_RETURN(auto leftovers, Leftovers(repo, &partial));
  r.leftovers_deleted = leftovers.size() + partial.size();
  uint64_t removed_bytes = 0;
  for (auto& id : drop) removed_bytes += packs[id].size;
  for (auto& id : repack) removed_bytes += packs[id].size;
  if (o.dry_run) {
    r.bytes_after = r.bytes_before - removed_bytes + r.bytes_repacked;  // about
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
  }

  // Repack: every record read back and checked before it is written again.
  step("repacking " + std::to_string(repack.size()) + " packs");
  IndexFileContents index;
  std::optional<PackWriter> w;
  auto finish = [&]() -> Status {
    LM_RETURN_IF_ERROR(w->Finish());
    index.packs.push_back({w->id(), w->entries()});
    r.packs_written++;
    r.bytes_after += w->size() + w->entries().size() * kPackEntrySize + kPackFooterSize;
    w.reset();
    return Status::Ok();
  };
  for (const PackId& id : repack) {
    auto& live = packs[id].live;
    std::sort(live.begin(), live.end(), [](auto& a, auto& b) { return a.offset < b.offset; });
    // One read for the pack's used records (one request on an object store), checked on
    // every core, then appended in order.
    std::string name = PackRelPath(id), span;
    uint64_t from = live.front().offset;
    uint64_t to = live.back().offset + kRecordHeaderSize + live.back().stored_len;
    LM_RETURN_IF_ERROR(be.ReadRange(name, from, to - from, &span));
    LM_RETURN_IF_ERROR(CheckRecords(repo.crypto(), span, from, live, be.Describe(name)));
    for (const PackEntry& e : live) {
      std::string_view stored(span.data() + (e.offset - from) + kRecordHeaderSize, e.stored_len);
      if (!w) {
        LM_ASSIGN_OR_RETURN(PackWriter created, PackWriter::Create(be));
        w.emplace(std::move(created));
      }
      LM_RETURN_IF_ERROR(w->Append(e.digest, e.codec, e.raw_len, stored));
      if (w->size() >= kNewPackBytes) LM_RETURN_IF_ERROR(finish());
    }
  }
  if (w) LM_RETURN_IF_ERROR(finish());

  // 3. One index for everything that stays, then the old ones go (unless no pack goes:
  // then the index stays as it is).
  std::set<PackId> gone(drop.begin(), drop.end());
  gone.insert(repack.begin(), repack.end());
  for (auto& [id, p] : packs) {
    if (gone.count(id)) continue;
    index.packs.push_back({id, p.live});
    r.bytes_after += p.size;
  }
  // Past this point prune replaces the index and deletes: only while its lock surely holds
  // (a backup may have started if it lapsed).
  LM_RETURN_IF_ERROR(lock->Check());
  if (!gone.empty()) {
    step("writing the index");
    std::string new_index = NewIndexName(repo.env()->NowMicros() * 1000);
    LM_RETURN_IF_ERROR(repo.WriteObject(new_index, EncodeIndexFile(index)));
    r.index_written = 1;
    for (const ObjectInfo& obj : old_index) {
      LM_RETURN_IF_ERROR(be.Delete(obj.name));
      r.index_deleted++;
    }
  }

  // 4. The packs nothing names any more, then the leftovers.
  step("deleting " + std::to_string(gone.size()) + " packs");
  LM_RETURN_IF_ERROR(lock->Check());
  for (const PackId& id : gone) LM_RETURN_IF_ERROR(be.Delete(PackRelPath(id)));
  for (const std::string& name : leftovers) LM_RETURN_IF_ERROR(be.Delete(name));
  for (const std::string& name : partial) LM_RETURN_IF_ERROR(be.DeletePartial(name));
  LM_RETURN_IF_ERROR(repo.Reload());
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace lm

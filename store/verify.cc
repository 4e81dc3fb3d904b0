#include "store/verify.h"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

namespace lm {

namespace {

struct Use {
  std::string backup_file;  // vm@id:path
  uint64_t offset;
};

class Verifier {
 public:
  Verifier(Repository& repo, const VerifyOptions& o, VerifyReport* r) : repo_(repo), o_(o), r_(*r) {}

  void CheckIndexFiles() {
    for (const std::string& bad : repo_.index().BadFiles()) r_.errors.push_back(bad);
    auto objects = repo_.backend().List("index/");
    if (!objects.ok()) {
      r_.errors.push_back(objects.status().message());
      return;
    }
    r_.index_files += objects->size();
    NotePartial("index/", "temporary file left by an interrupted backup");
  }

  void CheckBackups() {
    auto vms = repo_.ListVms();
    if (!vms.ok()) {
      r_.errors.push_back(vms.status().message());
      return;
    }
    NotePartial("backups/", "partial backup copy left by an interrupted backup (invisible; safe to delete)");
    for (const std::string& vm : *vms) {
      auto ids = repo_.ListBackupIds(vm);
      if (!ids.ok()) continue;
      NoteUncommitted(vm, *ids);
      for (const std::string& id : *ids) CheckBackup(BackupRef{vm, id});
    }
  }

  // Objects under backups/<vm>/<id>/ without a backup.json: a backup that is running, or
  // was interrupted (its claim.json says by whom and when).
  void NoteUncommitted(const std::string& vm, const std::vector<std::string>& ids) {
    auto objects = repo_.backend().List("backups/" + vm + "/");
    if (!objects.ok()) return;
    std::set<std::string> committed(ids.begin(), ids.end()), noted;
    size_t skip = 8 + vm.size() + 1;
    for (const ObjectInfo& o : *objects) {
      std::string id = o.name.substr(skip, o.name.find('/', skip) - skip);
      if (!committed.count(id) && noted.insert(id).second) {
        r_.notes.push_back("backups/" + vm + "/" + id + ": backup copy without backup.json (a "
                           "backup still running or interrupted; invisible to readers)");
      }
    }
  }

  void NotePartial(const std::string& prefix, const std::string& what) {
    auto partial = repo_.backend().ListPartial(prefix);
    if (!partial.ok()) {
      r_.errors.push_back(partial.status().message());
      return;
    }
    for (const std::string& n : *partial) r_.notes.push_back(n + ": " + what);
  }

  void CheckBackup(const BackupRef& b) {
    r_.backups++;
    auto m = repo_.LoadManifest(b);
    if (!m.ok()) {
      r_.errors.push_back(b.Name() + ": " + m.status().message());
      return;
    }
    for (const FileEntry& f : m->files) {
      if (f.type != FileType::kFile) continue;
      auto fc = repo_.LoadFileChunks(b, f);
      if (!fc.ok()) {
        r_.errors.push_back(b.Name() + ":" + f.path + ": " + fc.status().message());
        continue;
      }
      for (size_t i = 0; i < fc->digests.size(); i++) {
        const Digest& d = fc->digests[i];
        if (d.IsZero()) continue;
        auto& uses = uses_[d];
        if (uses.size() < 8) uses.push_back({b.Name() + ":" + f.path, i * uint64_t{fc->chunk_size}});
        else if (uses.size() == 8) uses.push_back({"(more)", 0});
      }
    }
  }

  // Every used chunk must be in the index; indexed chunks nothing uses are counted.
  void CheckReferences() {
    for (auto& [d, uses] : uses_) {
      if (!repo_.index().Contains(d)) Damage(d, "", "chunk is in no index (missing)");
    }
    for (auto& [pack, e] : repo_.index().AllEntries()) {
      if (uses_.count(e.digest)) continue;
      r_.unreferenced_chunks++;
      r_.unreferenced_bytes += kRecordHeaderSize + e.stored_len;
    }
  }

  // Pack headers and tables, and agreement between index and packs.
  void CheckPacks() {
    auto packs = repo_.ListPacks();
    if (!packs.ok()) {
      r_.errors.push_back(packs.status().message());
      return;
    }
    NotePartial("packs/", "temporary pack left by an interrupted backup");
    std::map<PackId, std::vector<PackEntry>> indexed;
    for (auto& [id, e] : repo_.index().AllEntries()) indexed[id].push_back(e);
    r_.chunks = repo_.index().size();
    std::set<PackId> present(packs->begin(), packs->end());
    for (auto& [id, entries] : indexed) {
      if (!present.count(id)) {
        for (auto& e : entries) Damage(e.digest, id, "pack " + PackRelPath(id) + " is missing");
      }
    }
    for (const PackId& id : *packs) {
      r_.packs++;
      auto it = indexed.find(id);
      if (it == indexed.end()) {
        r_.notes.push_back(PackRelPath(id) + ": in no index (left by an interrupted backup; "
                           "its chunks are not used)");
        continue;
      }
      auto table = ReadPackTable(repo_.backend(), id);
      if (!table.ok()) {
        r_.errors.push_back(table.status().message());
      } else {
        std::unordered_map<Digest, PackEntry, DigestHash> by_digest;
        for (auto& e : *table) by_digest[e.digest] = e;
        for (auto& e : it->second) {
          auto t = by_digest.find(e.digest);
          if (t == by_digest.end() || t->second.offset != e.offset ||
              t->second.stored_len != e.stored_len || t->second.raw_len != e.raw_len) {
            Damage(e.digest, id, "index entry disagrees with the pack's own table");
          }
        }
      }
      if (o_.read_data) {
        to_read_.push_back({id, it->second});
        for (auto& e : it->second) total_bytes_ += kRecordHeaderSize + e.stored_len;
      }
    }
  }

  // Reads every indexed chunk of every pack, in offset order, one pack per worker at a time.
  // Records that lie next to each other come with one read of up to kRunBytes (one GET on
  // an object store); a run that cannot be read is read record by record, so the damage
  // report names each record.
  static constexpr uint64_t kRunBytes = 8ull << 20;
  void ReadData() {
    std::atomic<size_t> next{0};
    std::atomic<uint64_t> done{0};
    std::atomic<bool> finished{false};
    auto worker = [&] {
      std::string run, raw;
      for (size_t p; (p = next.fetch_add(1)) < to_read_.size();) {
        auto& [id, entries] = to_read_[p];
        std::sort(entries.begin(), entries.end(),
                  [](auto& a, auto& b) { return a.offset < b.offset; });
        std::string name = PackRelPath(id);
        auto end_of = [](const PackEntry& e) { return e.offset + kRecordHeaderSize + e.stored_len; };
        for (size_t start = 0, end; start < entries.size(); start = end) {
          uint64_t begin = entries[start].offset;
          for (end = start + 1; end < entries.size() && entries[end].offset == end_of(entries[end - 1]) &&
                                end_of(entries[end]) - begin <= kRunBytes;
               end++) {
          }
          Status joint = repo_.backend().ReadRange(name, begin, end_of(entries[end - 1]) - begin, &run);
          for (size_t k = start; k < end; k++) {
            const PackEntry& e = entries[k];
            std::string where = name + " offset " + std::to_string(e.offset);
            std::string alone;
            Status s = joint.ok() ? Status::Ok()
                                  : repo_.backend().ReadRange(name, e.offset, kRecordHeaderSize + e.stored_len, &alone);
            if (s.ok()) {
              std::string_view record = joint.ok() ? std::string_view(run).substr(e.offset - begin, kRecordHeaderSize + e.stored_len)
                                                   : std::string_view(alone);
              raw.resize(e.raw_len);
              s = DecodeChunkRecord(repo_.crypto(), record, e, where, raw.data());
            }
            done += kRecordHeaderSize + e.stored_len;
            std::lock_guard lock(mu_);
            r_.chunks_read++;
            r_.bytes_read += kRecordHeaderSize + e.stored_len;
            if (!s.ok()) Damage(e.digest, id, s.message());
          }
        }
      }
    };
    unsigned n = o_.threads ? o_.threads : std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < n; t++) pool.emplace_back(worker);
    std::thread reporter([&] {
      while (!finished) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (o_.progress) o_.progress(done, total_bytes_);
      }
    });
    for (auto& t : pool) t.join();
    finished = true;
    reporter.join();
    if (o_.progress) o_.progress(done, total_bytes_);
  }

 private:
  void Damage(const Digest& d, const std::string& pack, const std::string& error) {
    ChunkDamage c{d, pack, error, {}};
    auto it = uses_.find(d);
    if (it != uses_.end()) {
      for (auto& u : it->second) {
        c.users.push_back(u.backup_file == "(more)" ? u.backup_file
                                                     : u.backup_file + " (offset " +
                                                           std::to_string(u.offset) + ")");
      }
    }
    r_.damaged_chunks.push_back(std::move(c));
  }

  Repository& repo_;
  const VerifyOptions& o_;
  VerifyReport& r_;
  std::mutex mu_;
  std::unordered_map<Digest, std::vector<Use>, DigestHash> uses_;
  std::vector<std::pair<PackId, std::vector<PackEntry>>> to_read_;
  uint64_t total_bytes_ = 0;
};

}  // namespace

Result<VerifyReport> RunVerify(Repository& repo, const VerifyOptions& o) {
  auto start = std::chrono::steady_clock::now();
  // Every index object is read afresh: what is checked is the repository, not a copy of
  // its index kept in a cache directory from an earlier run.
  LM_RETURN_IF_ERROR(repo.Reload());
  VerifyReport r;
  Verifier v(repo, o, &r);
  v.CheckIndexFiles();
  v.CheckBackups();
  v.CheckReferences();
  v.CheckPacks();
  if (o.read_data) v.ReadData();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace lm

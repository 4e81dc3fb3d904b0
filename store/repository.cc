#include "store/repository.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/names.h"
#include "store/backend/local_backend.h"
#include "store/backend/s3/s3_backend.h"
#include "store/repo_keys.h"

namespace lm {

using nlohmann::json;

Status RepoOptions::validate() const {
  if (!env) return Status::Invalid("repository options: no env");
  if (max_open_packs < 1) return Status::Invalid("repository options: max_open_packs < 1");
  return Status::Ok();
}

bool IsObjectStoreLocation(const std::string& location) { return s3::IsS3Location(location); }

std::string AbsoluteLocation(const std::string& location) {
  return IsObjectStoreLocation(location) ? location : AbsolutePath(location);
}

Result<std::unique_ptr<Backend>> OpenBackend(const std::string& location, Env* env,
                                             size_t max_open_files) {
  if (location.empty()) return Status::Invalid("no repository location given");
  if (s3::IsS3Location(location)) return s3::OpenS3Backend(location);
  LocalBackendOptions o;
  o.max_open_files = max_open_files;
  LM_RETURN_IF_ERROR(o.validate());
  return std::unique_ptr<Backend>(new LocalBackend(location, env, o));
}

Status Repository::Init(const std::string& location, const InitOptions& o, Env* env) {
  uint32_t chunk_size = o.chunk_size;
  if (chunk_size < kMinChunkSize || chunk_size > kMaxChunkSize ||
      (chunk_size & (chunk_size - 1)) != 0) {
    return Status::Invalid("chunk size " + std::to_string(chunk_size) +
                           " must be a power of two from 4K to 16M");
  }
  LM_ASSIGN_OR_RETURN(auto backend, OpenBackend(location, env));
  if (backend->Size("config").ok()) {
    return Status::Exists(location + ": already a livemount repository");
  }
  LM_RETURN_IF_ERROR(backend->PrepareNew());
  std::string id = RandomHex(16);
  int64_t created_ns = env->NowMicros() * 1000;
  if (!o.encrypted) {
    json j = {{"format", "livemount-repository"},
              {"version", 1},
              {"id", id},
              {"chunk_size", chunk_size},
              {"created_ns", created_ns}};
    // One write-once object: a location with a config is a complete repository, and of
    // two concurrent inits exactly one wins.
    return backend->Create("config", j.dump(1) + "\n");
  }
  // The key slot first, then the config: a location with a config always has its key.
  // The loser of two concurrent inits removes its slot (bound to its own id: harmless).
  if (!o.password) return Status::Invalid("an encrypted repository needs a password");
  LM_ASSIGN_OR_RETURN(std::string password, o.password());
  LM_ASSIGN_OR_RETURN(NewEncryptedRepo r, MakeEncryptedRepo(id, chunk_size, created_ns, password, o.kdf));
  std::string key_name = KeyObjectName(r.key.id);
  LM_RETURN_IF_ERROR(backend->Create(key_name, EncodeKeyFile(r.key)));
  Status s = backend->Create("config", r.config_text);
  if (!s.ok()) (void)backend->Delete(key_name);
  return s;
}

namespace {
Result<RepoConfig> LoadRepoConfig(Backend& backend) {
  auto text = backend.ReadAll("config");
  if (!text.ok() && text.status().code() == Code::kNotFound) {
    return Status::NotFound(backend.location() + ": not a livemount repository (no config file)");
  }
  LM_RETURN_IF_ERROR(text.status());
  return DecodeRepoConfig(*text, backend.Describe("config"));
}
}  // namespace

Result<RepoConfig> ReadRepoConfig(const std::string& location, Env* env) {
  LM_ASSIGN_OR_RETURN(auto backend, OpenBackend(location, env));
  return LoadRepoConfig(*backend);
}

Result<std::unique_ptr<Repository>> Repository::Open(const std::string& location,
                                                     RepoOptions options) {
  LM_RETURN_IF_ERROR(options.validate());
  if (!IsObjectStoreLocation(location) && !IsDirectory(location)) {
    return Status::NotFound(location + ": no such repository directory");
  }
  LM_ASSIGN_OR_RETURN(auto backend, OpenBackend(location, options.env, options.max_open_packs));
  return Open(std::move(backend), options);
}

Result<std::unique_ptr<Repository>> Repository::Open(std::unique_ptr<Backend> backend,
                                                     RepoOptions options) {
  LM_RETURN_IF_ERROR(options.validate());
  if (!backend) return Status::Invalid("repository: no backend");
  std::unique_ptr<Repository> repo(new Repository(std::move(backend), options));
  LM_ASSIGN_OR_RETURN(repo->config_, LoadRepoConfig(*repo->backend_));
  if (repo->config_.encrypted) {
    if (!options.password) {
      return Status::Denied(repo->path() + ": the repository is encrypted and no password was given");
    }
    LM_ASSIGN_OR_RETURN(std::string password, options.password());
    LM_ASSIGN_OR_RETURN(UnlockedKey key, UnlockRepository(*repo->backend_, repo->config_, password));
    repo->crypto_ = std::move(key.crypto);
    repo->key_id_ = std::move(key.key_id);
  }
  // Local copies (metadata, the chunk table) are the repository's at this location: another
  // repository claiming the same id elsewhere never sees them.
  std::string ns = Digest::Of(AbsoluteLocation(repo->path()) + '\n' + repo->config_.id).Hex().substr(0, 32);
  if (options.chunk_table) {
    auto table = options.chunk_table(ns);
    if (!table.ok()) return table.status();
    repo->index_.Use(std::move(table).value());
  }
  if (options.object_cache) {  // the config (its id) and key slots are always read afresh
    auto caching = std::make_unique<CachingBackend>(std::move(repo->backend_), *options.object_cache, ns);
    repo->caching_ = caching.get();
    repo->backend_ = std::move(caching);
    // A media agent starts from the index objects it has copies of, without a listing:
    // a backup made since is found when a read meets one of its chunks (RefreshNewest),
    // and a copy of an index prune replaced only costs a reload when it is used.
    std::vector<ObjectInfo> cached = repo->caching_->CachedNames("index/");
    if (!cached.empty()) {
      bool found_bad = false;
      LM_RETURN_IF_ERROR(repo->index_.LoadNamed(*repo->backend_, *repo->crypto_, cached, &found_bad));
      if (!found_bad) return repo;
      LM_RETURN_IF_ERROR(repo->Reload());  // a damaged copy: start from what the store has
      return repo;
    }
  }
  LM_RETURN_IF_ERROR(repo->Refresh());
  return repo;
}

Result<RepoConfig> DecodeRepoConfig(const std::string& text, const std::string& config_path) {
  json j = json::parse(text, nullptr, false);
  auto bad = [&](const std::string& what) { return Status::Corrupt(config_path + ": " + what); };
  if (j.is_discarded() || !j.is_object() || j.value("format", json()) != "livemount-repository") {
    return bad("not a livemount repository config");
  }
  RepoConfig c;
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer()) return bad("field 'version' is missing or not an integer");
  if (*version != 1 && *version != 2) {
    return Status::Unsupported(config_path + ": repository version " + version->dump() + " is newer than this livemount");
  }
  c.version = version->get<int>();
  auto id = j.find("id");
  if (id == j.end() || !id->is_string()) return bad("field 'id' is missing or not a string");
  c.id = id->get<std::string>();
  auto cs = j.find("chunk_size");
  if (cs == j.end() || !cs->is_number_unsigned() || *cs < kMinChunkSize || *cs > kMaxChunkSize ||
      (cs->get<uint64_t>() & (cs->get<uint64_t>() - 1)) != 0) {
    return bad("invalid chunk size (field 'chunk_size')");
  }
  c.chunk_size = cs->get<uint32_t>();
  auto created = j.find("created_ns");
  if (created != j.end() && !created->is_number_integer()) return bad("field 'created_ns' is not an integer");
  if (created != j.end()) c.created_ns = created->get<int64_t>();
  if (c.version == 1) return c;
  // Version 2: encrypted. Only the one scheme there is; the MAC is checked once unlocked.
  auto enc = j.find("encryption");
  if (enc == j.end() || !enc->is_object() || enc->value("cipher", json()) != "aes-256-gcm" ||
      enc->value("chunk_id", json()) != "hmac-sha256" || enc->value("kdf", json()) != "scrypt") {
    return Status::Unsupported(config_path + ": unknown encryption scheme (field 'encryption')");
  }
  auto mac = j.find("mac");
  if (mac == j.end() || !mac->is_string() || !Digest::FromHex(mac->get<std::string>(), &c.mac)) {
    return bad("field 'mac' is missing or not 64 hex characters");
  }
  if (c.id.size() != 32) return bad("field 'id' is not 32 hex characters");
  j.erase("mac");
  c.canonical = j.dump();
  c.encrypted = true;
  return c;
}

Status Repository::Refresh() {
  bool found_bad = false, gone = false;
  LM_RETURN_IF_ERROR(index_.LoadNew(*backend_, *crypto_, &found_bad, &gone));
  // A prune replaced index objects since the table was filled (an on-disk one, from an
  // earlier run): it may name chunks that are gone, and a backup would skip storing them.
  if (gone) return Reload();
  return found_bad ? IndexUnindexedPacks() : Status::Ok();
}

Status Repository::RefreshNewest() {
  bool found_bad = false;
  LM_RETURN_IF_ERROR(index_.LoadNewest(*backend_, *crypto_, env()->NowMicros() * 1000, &found_bad));
  return found_bad ? IndexUnindexedPacks() : Status::Ok();
}

Status Repository::Reload() {
  std::lock_guard lock(reload_mu_);  // one rebuild at a time; readers keep using the old map
  bool found_bad = false;
  LM_RETURN_IF_ERROR(index_.Reload(*backend_, *crypto_, &found_bad));
  return found_bad ? IndexUnindexedPacks() : Status::Ok();
}

Status Repository::IndexUnindexedPacks() {
  // Some chunks' locations were in a damaged index file: learn them from the packs.
  LM_ASSIGN_OR_RETURN(auto packs, ListPacks());
  for (const PackId& id : packs) {
    if (index_.HasPack(id)) continue;
    auto table = ReadPackTable(*backend_, id);
    if (table.ok()) LM_RETURN_IF_ERROR(index_.Add(PackRelPath(id), IndexFileContents{{{id, *table}}}));
  }
  return Status::Ok();
}

Result<std::vector<PackId>> Repository::ListPacks() const {
  std::vector<PackId> out;
  LM_ASSIGN_OR_RETURN(auto objects, backend_->List("packs/"));
  for (const ObjectInfo& o : objects) {
    PackId id;
    if (ParsePackName(o.name, &id)) out.push_back(std::move(id));
  }
  return out;
}

namespace {
// "backups/<vm>/<rest>" -> vm and rest; false for anything else.
bool SplitBackupName(const std::string& name, std::string* vm, std::string* rest) {
  if (name.rfind("backups/", 0) != 0) return false;
  size_t slash = name.find('/', 8);
  if (slash == std::string::npos) return false;
  *vm = name.substr(8, slash - 8);
  *rest = name.substr(slash + 1);
  return IsValidName(*vm);
}
}  // namespace

Result<std::vector<std::string>> Repository::ListVms() const {
  LM_ASSIGN_OR_RETURN(auto objects, backend_->List("backups/"));
  std::vector<std::string> vms;
  std::string vm, rest;
  for (const ObjectInfo& o : objects) {
    if (SplitBackupName(o.name, &vm, &rest) && (vms.empty() || vms.back() != vm)) vms.push_back(vm);
  }
  return vms;  // sorted: the listing is
}

Result<std::vector<std::string>> Repository::ListBackupIds(const std::string& vm) const {
  if (!IsValidName(vm)) return Status::Invalid("invalid VM name '" + vm + "'");
  LM_ASSIGN_OR_RETURN(auto objects, backend_->List("backups/" + vm + "/"));
  if (objects.empty()) return Status::NotFound(path() + ": no VM named '" + vm + "'");
  std::vector<std::string> ids;
  std::string v, rest;
  for (const ObjectInfo& o : objects) {
    // A copy exists once its backup.json does (the commit point of a backup); objects of
    // an interrupted backup, or a "latest" planted in a shared repository, are ignored.
    if (!SplitBackupName(o.name, &v, &rest)) continue;
    size_t slash = rest.find('/');
    if (slash == std::string::npos || rest.compare(slash + 1, std::string::npos, "backup.json") != 0) continue;
    std::string id = rest.substr(0, slash);
    if (IsValidBackupId(id)) ids.push_back(std::move(id));
  }
  // Ids are UTC times and sort as strings; a "-N" suffix sorts after its base.
  std::sort(ids.begin(), ids.end());
  return ids;
}
Result<BackupRef> Repository::Resolve(const std::string& vm, const std::string& id) const {
  LM_ASSIGN_OR_RETURN(auto ids, ListBackupIds(vm));
  if (ids.empty()) return Status::NotFound(path() + ": VM '" + vm + "' has no backup copies");
  if (id.empty() || id == "latest") return BackupRef{vm, ids.back()};
  for (auto& i : ids)
    if (i == id) return BackupRef{vm, i};
  return Status::NotFound(path() + ": VM '" + vm + "' has no backup '" + id + "'");
}

Result<BackupRef> Repository::ResolveSpec(const std::string& spec) const {
  auto at = spec.find('@');
  if (at == std::string::npos) return Resolve(spec, "latest");
  return Resolve(spec.substr(0, at), spec.substr(at + 1));
}

Result<BackupManifest> Repository::LoadManifest(const BackupRef& b) const {
  std::string name = b.Prefix() + "backup.json";
  std::string path = backend_->Describe(name);
  LM_ASSIGN_OR_RETURN(std::string text, ReadObject(name));
  LM_ASSIGN_OR_RETURN(std::string sum, ReadObject(name + ".sha256"));
  while (!sum.empty() && (sum.back() == '\n' || sum.back() == ' ')) sum.pop_back();
  if (Digest::Of(text).Hex() != sum) return Status::Corrupt(path + ": checksum mismatch");
  LM_ASSIGN_OR_RETURN(BackupManifest m, DecodeManifest(text, path));
  if (m.vm != b.vm || m.id != b.id) {
    return Status::Corrupt(path + ": names backup " + m.vm + "@" + m.id + ", not " + b.Name());
  }
  return m;
}

Result<FileChunks> Repository::LoadFileChunks(const BackupRef& b, const FileEntry& f) const {
  std::string name = b.Prefix() + f.fidx;
  std::string path = backend_->Describe(name);
  LM_ASSIGN_OR_RETURN(std::string data, ReadObject(name));
  LM_ASSIGN_OR_RETURN(FileChunks c, DecodeFidx(data, path));
  if (c.file_size != f.size) {
    return Status::Corrupt(path + ": file size " + std::to_string(c.file_size) +
                           " disagrees with backup.json (" + std::to_string(f.size) + ")");
  }
  return c;
}

Result<std::string> Repository::ReadBackupObject(const BackupRef& b, const std::string& name) const {
  return ReadObject(b.Prefix() + name);
}

Result<std::string> Repository::ReadObject(const std::string& name) const {
  LM_ASSIGN_OR_RETURN(std::string data, backend_->ReadAll(name));
  return crypto_->OpenObject(name, std::move(data), backend_->Describe(name));
}

Status Repository::WriteObject(const std::string& name, std::string_view plain) const {
  LM_ASSIGN_OR_RETURN(std::string data, crypto_->SealObject(name, plain));
  return backend_->Create(name, data);
}

Status Repository::ReadChunk(const Digest& d, std::string* raw) {
  ChunkLocation loc;
  PackId pack;
  if (!index_.Find(d, &loc, &pack)) {
    // A new backup's chunks: the index objects written since the newest one known (one
    // short listing), then, if that was not enough, all of them.
    LM_RETURN_IF_ERROR(RefreshNewest());
    if (!index_.Find(d, &loc, &pack)) LM_RETURN_IF_ERROR(Refresh());
    if (!index_.Find(d, &loc, &pack)) {
      return Status::NotFound(path() + ": chunk " + d.ShortHex() + " is in no index");
    }
  }
  PackEntry e{d, loc.offset, loc.stored_len, loc.raw_len, loc.codec};
  Status s;
  {
    ScopedLatency timed(counters_.read_latency);
    s = ReadChunkRecord(*backend_, *crypto_, pack, e, raw);
  }
  // A prune moved the chunk to a new pack and deleted the old one: learn where it is now
  // from the index prune wrote (a mount never fails a read because of a prune).
  for (int tries = 0; s.code() == Code::kNotFound && tries < 3; tries++) {
    LM_RETURN_IF_ERROR(Reload());
    if (!index_.Find(d, &loc, &pack)) return s;
    e = PackEntry{d, loc.offset, loc.stored_len, loc.raw_len, loc.codec};
    s = ReadChunkRecord(*backend_, *crypto_, pack, e, raw);
  }
  LM_RETURN_IF_ERROR(s);
  CountChunkRead(loc);
  return Status::Ok();
}

void Repository::CountChunkRead(const ChunkLocation& loc) {
  counters_.chunks_read.fetch_add(1, std::memory_order_relaxed);
  counters_.bytes_read.fetch_add(kRecordHeaderSize + loc.stored_len, std::memory_order_relaxed);
  counters_.raw_bytes_read.fetch_add(loc.raw_len, std::memory_order_relaxed);
  int kind = static_cast<int>(CurrentIoKind());
  counters_.chunks_by_kind[kind].fetch_add(1, std::memory_order_relaxed);
  counters_.bytes_by_kind[kind].fetch_add(kRecordHeaderSize + loc.stored_len, std::memory_order_relaxed);
}

std::vector<Repository::ReadRun> Repository::PlanRuns(const std::vector<Digest>& digests,
                                                     std::vector<size_t>* unknown) const {
  struct Item {
    size_t i;
    PackId pack;
    ChunkLocation loc;
  };
  std::vector<Item> located;
  for (size_t i = 0; i < digests.size(); i++) {
    Item it{i, {}, {}};
    if (index_.Find(digests[i], &it.loc, &it.pack)) located.push_back(it);
    else unknown->push_back(i);
  }
  // Records of one pack in offset order; a run of records close to each other is one read.
  std::sort(located.begin(), located.end(), [](const Item& a, const Item& b) {
    return a.pack != b.pack ? a.pack < b.pack : a.loc.offset < b.loc.offset;
  });
  auto record_end = [](const Item& it) { return it.loc.offset + kRecordHeaderSize + it.loc.stored_len; };
  std::vector<ReadRun> runs;
  for (size_t start = 0; start < located.size();) {
    ReadRun run{located[start].pack, located[start].loc.offset, record_end(located[start]), {}};
    run.items.emplace_back(located[start].i, located[start].loc);
    size_t next = start + 1;
    while (next < located.size() && located[next].pack == run.pack && located[next].loc.offset >= run.end &&
           located[next].loc.offset - run.end <= kMaxCoalescedGap &&
           record_end(located[next]) - run.begin <= kMaxCoalescedRead) {
      run.end = record_end(located[next]);
      run.items.emplace_back(located[next].i, located[next].loc);
      next++;
    }
    runs.push_back(std::move(run));
    start = next;
  }
  return runs;
}

std::vector<std::vector<size_t>> Repository::GroupByRead(const std::vector<Digest>& digests,
                                                          std::vector<uint64_t>* raw_bytes) const {
  std::vector<size_t> unknown;
  std::vector<std::vector<size_t>> groups;
  std::vector<uint64_t> raw;
  for (const ReadRun& run : PlanRuns(digests, &unknown)) {
    groups.emplace_back();
    raw.push_back(0);
    for (auto& [i, loc] : run.items) groups.back().push_back(i), raw.back() += loc.raw_len;
  }
  for (size_t i : unknown) groups.push_back({i}), raw.push_back(0);
  if (raw_bytes) *raw_bytes = std::move(raw);
  return groups;
}

Status Repository::ReadChunks(const std::vector<Digest>& digests, std::vector<std::string>* raws) {
  raws->assign(digests.size(), std::string());
  std::vector<size_t> unknown;
  std::vector<ReadRun> runs = PlanRuns(digests, &unknown);
  for (size_t i : unknown) LM_RETURN_IF_ERROR(ReadChunk(digests[i], &(*raws)[i]));  // refreshes the index
  // Kept per thread: a fresh buffer is zero-filled and faulted in for every read (about a
  // tenth of a pre-stage's time); a kept one is resized within what it holds. Kept up to a
  // hydration fetch's size (16 chunks), so that a media agent's many threads do not each
  // hold on to the largest run they ever read.
  constexpr size_t kKeptReadBuffer = 4 << 20;
  thread_local std::string bytes;
  for (const ReadRun& run : runs) {
    std::string name = PackRelPath(run.pack);
    Status s;
    {
      ScopedLatency timed(counters_.read_latency);
      s = backend_->ReadRange(name, run.begin, run.end - run.begin, &bytes);
    }
    for (size_t k = 0; s.ok() && k < run.items.size(); k++) {
      auto& [i, loc] = run.items[k];
      PackEntry e{digests[i], loc.offset, loc.stored_len, loc.raw_len, loc.codec};
      std::string_view record(bytes.data() + (loc.offset - run.begin), kRecordHeaderSize + loc.stored_len);
      s = DecodePackRecord(*backend_, *crypto_, name, record, e, &(*raws)[i]);
      if (s.ok()) CountChunkRead(loc);
    }
    if (!s.ok()) {
      // Gone (a prune moved it) or damaged: chunk by chunk, with ReadChunk's reloads and
      // its error naming the one damaged chunk.
      for (auto& [i, loc] : run.items) LM_RETURN_IF_ERROR(ReadChunk(digests[i], &(*raws)[i]));
    }
  }
  if (bytes.capacity() > kKeptReadBuffer) std::string().swap(bytes);
  return Status::Ok();
}

}  // namespace lm

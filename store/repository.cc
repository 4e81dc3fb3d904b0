#include "store/repository.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

namespace lm {

using nlohmann::json;

Status RepoOptions::validate() const {
  if (!env) return Status::Invalid("repository options: no env");
  if (max_open_packs < 1) return Status::Invalid("repository options: max_open_packs < 1");
  return Status::Ok();
}

Status Repository::Init(const std::string& path, uint32_t chunk_size, Env* env) {
  if (path.empty()) return Status::Invalid("no repository path given");
  if (chunk_size < kMinChunkSize || chunk_size > kMaxChunkSize ||
      (chunk_size & (chunk_size - 1)) != 0) {
    return Status::Invalid("chunk size " + std::to_string(chunk_size) +
                           " must be a power of two from 4K to 16M");
  }
  std::string config_path = JoinPath(path, "config");
  if (PathExists(config_path)) {
    return Status::Exists(path + ": already a livemount repository");
  }
  if (PathExists(path)) {
    if (!IsDirectory(path)) return Status::Exists(path + ": exists and is not a directory");
    LM_ASSIGN_OR_RETURN(auto names, ListDir(path));
    if (!names.empty()) {
      return Status::Exists(path + ": directory is not empty and is not a livemount repository");
    }
  }
  for (const char* sub : {"packs", "index", "backups", "locks"}) {
    LM_RETURN_IF_ERROR(MkdirAll(JoinPath(path, sub)));
  }
  LM_ASSIGN_OR_RETURN(UniqueFd lock, env->Open(JoinPath(path, "locks/repo.lock"),
                                               O_WRONLY | O_CREAT | O_NOFOLLOW, 0600));
  json j = {{"format", "livemount-repository"},
            {"version", 1},
            {"id", RandomHex(16)},
            {"chunk_size", chunk_size},
            {"created_ns", env->NowMicros() * 1000}};
  LM_RETURN_IF_ERROR(env->FsyncDir(path));
  // The config is written last: a directory with a config is a complete repository.
  return env->WriteFileAtomic(config_path, j.dump(1) + "\n");
}

Result<std::unique_ptr<Repository>> Repository::Open(const std::string& path,
                                                     RepoOptions options) {
  LM_RETURN_IF_ERROR(options.validate());
  std::string config_path = JoinPath(path, "config");
  if (!IsDirectory(path)) return Status::NotFound(path + ": no such repository directory");
  if (!PathExists(config_path)) {
    return Status::NotFound(path + ": not a livemount repository (no config file)");
  }
  std::unique_ptr<Repository> repo(new Repository(path, options));
  LM_ASSIGN_OR_RETURN(std::string text, options.env->ReadFile(config_path));
  LM_ASSIGN_OR_RETURN(repo->config_, DecodeRepoConfig(text, config_path));
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
  if (*version != 1) {
    return Status::Unsupported(config_path + ": repository version " + version->dump() + " is newer than this livemount");
  }
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
  return c;
}

Status Repository::Refresh() {
  bool found_bad = false;
  LM_RETURN_IF_ERROR(index_.LoadNew(env(), path_, &found_bad));
  if (!found_bad) return Status::Ok();
  // Some chunks' locations were in the damaged index file: learn them from the packs.
  LM_ASSIGN_OR_RETURN(auto packs, ListPacks());
  for (const PackId& id : packs) {
    if (index_.HasPack(id)) continue;
    auto table = ReadPackTable(env(), JoinPath(path_, PackRelPath(id)));
    if (table.ok()) index_.Add(id, *table);
  }
  return Status::Ok();
}

Result<std::vector<PackId>> Repository::ListPacks() const {
  std::vector<PackId> out;
  LM_ASSIGN_OR_RETURN(auto dirs, ListDir(JoinPath(path_, "packs")));
  for (const std::string& d : dirs) {
    auto names = ListDir(JoinPath(path_, "packs/" + d));
    if (!names.ok()) continue;
    for (const std::string& n : *names) {
      if (n.size() == 37 && n.compare(32, 5, ".pack") == 0) out.push_back(n.substr(0, 32));
    }
  }
  return out;
}

Result<std::vector<std::string>> Repository::ListVms() const {
  LM_ASSIGN_OR_RETURN(auto names, ListDir(JoinPath(path_, "backups")));
  std::vector<std::string> vms;
  for (auto& n : names) {
    if (IsValidName(n) && IsDirectory(JoinPath(path_, "backups/" + n))) vms.push_back(n);
  }
  return vms;
}

Result<std::vector<std::string>> Repository::ListBackupIds(const std::string& vm) const {
  if (!IsValidName(vm)) return Status::Invalid("invalid VM name '" + vm + "'");
  std::string dir = JoinPath(path_, "backups/" + vm);
  if (!IsDirectory(dir)) return Status::NotFound(path_ + ": no VM named '" + vm + "'");
  LM_ASSIGN_OR_RETURN(auto names, ListDir(dir));
  std::vector<std::string> ids;
  for (auto& n : names) {
    // Temporary directories of running or killed backups start with '.'; anything else
    // that is not a backup id (a "latest" planted in a shared repository) is ignored.
    if (IsValidBackupId(n)) ids.push_back(n);
  }
  // Ids are UTC times and sort as strings; a "-N" suffix sorts after its base.
  return ids;
}

Result<BackupRef> Repository::Resolve(const std::string& vm, const std::string& id) const {
  LM_ASSIGN_OR_RETURN(auto ids, ListBackupIds(vm));
  if (ids.empty()) return Status::NotFound(path_ + ": VM '" + vm + "' has no backup copies");
  if (id.empty() || id == "latest") return BackupRef{vm, ids.back()};
  for (auto& i : ids)
    if (i == id) return BackupRef{vm, i};
  return Status::NotFound(path_ + ": VM '" + vm + "' has no backup '" + id + "'");
}

Result<BackupRef> Repository::ResolveSpec(const std::string& spec) const {
  auto at = spec.find('@');
  if (at == std::string::npos) return Resolve(spec, "latest");
  return Resolve(spec.substr(0, at), spec.substr(at + 1));
}

std::string Repository::BackupDir(const BackupRef& b) const {
  return JoinPath(path_, "backups/" + b.vm + "/" + b.id);
}

Result<BackupManifest> Repository::LoadManifest(const BackupRef& b) const {
  std::string dir = BackupDir(b);
  std::string path = JoinPath(dir, "backup.json");
  LM_ASSIGN_OR_RETURN(std::string text, env()->ReadFile(path));
  LM_ASSIGN_OR_RETURN(std::string sum, env()->ReadFile(path + ".sha256"));
  while (!sum.empty() && (sum.back() == '\n' || sum.back() == ' ')) sum.pop_back();
  if (Digest::Of(text).Hex() != sum) return Status::Corrupt(path + ": checksum mismatch");
  LM_ASSIGN_OR_RETURN(BackupManifest m, DecodeManifest(text, path));
  if (m.vm != b.vm || m.id != b.id) {
    return Status::Corrupt(path + ": names backup " + m.vm + "@" + m.id + ", not " + b.Name());
  }
  return m;
}

Result<FileChunks> Repository::LoadFileChunks(const BackupRef& b, const FileEntry& f) const {
  std::string path = JoinPath(BackupDir(b), f.fidx);
  LM_ASSIGN_OR_RETURN(std::string data, env()->ReadFile(path));
  LM_ASSIGN_OR_RETURN(FileChunks c, DecodeFidx(data, path));
  if (c.file_size != f.size) {
    return Status::Corrupt(path + ": file size " + std::to_string(c.file_size) +
                           " disagrees with backup.json (" + std::to_string(f.size) + ")");
  }
  return c;
}

Result<std::shared_ptr<UniqueFd>> Repository::PackFd(const PackId& id) {
  std::lock_guard lock(fd_mu_);
  auto it = open_packs_.find(id);
  if (it != open_packs_.end()) return it->second;
  std::string path = JoinPath(path_, PackRelPath(id));
  LM_ASSIGN_OR_RETURN(UniqueFd fd, env()->Open(path, O_RDONLY));
  auto shared = std::make_shared<UniqueFd>(std::move(fd));
  if (open_packs_.size() >= options_.max_open_packs) {
    // Close the oldest; readers still holding its shared_ptr keep it open until done.
    open_packs_.erase(pack_lru_.front());
    pack_lru_.pop_front();
  }
  open_packs_.emplace(id, shared);
  pack_lru_.push_back(id);
  return shared;
}

Status Repository::ReadChunk(const Digest& d, std::string* raw) {
  ChunkLocation loc;
  PackId pack;
  if (!index_.Find(d, &loc, &pack)) {
    LM_RETURN_IF_ERROR(Refresh());
    if (!index_.Find(d, &loc, &pack)) {
      return Status::NotFound(path_ + ": chunk " + d.ShortHex() + " is in no index");
    }
  }
  LM_ASSIGN_OR_RETURN(auto fd, PackFd(pack));
  PackEntry e{d, loc.offset, loc.stored_len, loc.raw_len, loc.codec};
  LM_RETURN_IF_ERROR(
      ReadChunkRecord(env(), fd->get(), JoinPath(path_, PackRelPath(pack)), e, raw));
  counters_.chunks_read.fetch_add(1, std::memory_order_relaxed);
  counters_.bytes_read.fetch_add(kRecordHeaderSize + loc.stored_len, std::memory_order_relaxed);
  counters_.raw_bytes_read.fetch_add(loc.raw_len, std::memory_order_relaxed);
  return Status::Ok();
}

Result<RepoLock> RepoLock::Shared(const std::string& repo) {
  RepoLock l;
  std::string path = JoinPath(repo, "locks/repo.lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::FromErrno(errno, path);
  l.fd_.reset(fd);
  if (::flock(fd, LOCK_SH) != 0) return Status::FromErrno(errno, "lock " + path);
  return l;
}


}  // namespace lm

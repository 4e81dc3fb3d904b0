// Repository: the secondary storage every backup copy lives in. A directory now (an object
// store later: every file is written once, whole, and never changed).
//
//   REPO/config                      what this is, chunk size, id        (JSON)
//   REPO/packs/<aa>/<id>.pack        compressed chunks                   (pack.h)
//   REPO/index/<id>.idx              digest -> pack location             (chunk_index.h)
//   REPO/backups/<vm>/<id>/          one backup copy                     (manifest.h)
//   REPO/locks/repo.lock             flock: backups shared, maintenance exclusive
//
// Open() is cheap enough for every CLI command; a Repository is safe to share between
// threads. Readers keep working while a backup writes: everything becomes visible by an
// atomic rename, in the order packs, then index, then the backup copy.
#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/chunk_index.h"
#include "base/env.h"
#include "store/manifest.h"
#include "base/status.h"
#include "base/units.h"

namespace lm {

inline constexpr uint32_t kDefaultChunkSize = 128 * 1024;
inline constexpr uint32_t kMinChunkSize = 4 * 1024;
inline constexpr uint32_t kMaxChunkSize = 16 * 1024 * 1024;

struct RepoOptions {
  Env* env = nullptr;  // required: the composition root (tools/) passes it
  size_t max_open_packs = 128;
  Status validate() const;
};

struct RepoConfig {
  int version = 1;
  std::string id;
  uint32_t chunk_size = kDefaultChunkSize;
  int64_t created_ns = 0;
};

// Parses REPO/config; Corrupt or Unsupported naming the file and the field.
Result<RepoConfig> DecodeRepoConfig(const std::string& text, const std::string& config_path);

struct BackupRef {
  std::string vm, id;
  std::string Name() const { return vm + "@" + id; }
};

// Counters a media agent reports; updated with relaxed atomics.
struct RepoCounters {
  std::atomic<uint64_t> chunks_read{0}, bytes_read{0}, raw_bytes_read{0};
};

class Repository {
 public:
  // Creates a repository in an empty or missing directory.
  static Status Init(const std::string& path, uint32_t chunk_size, Env* env);
  static Result<std::unique_ptr<Repository>> Open(const std::string& path,
                                                  RepoOptions options = {});

  const std::string& path() const { return path_; }
  const RepoConfig& config() const { return config_; }
  uint32_t chunk_size() const { return config_.chunk_size; }
  Env* env() const { return options_.env; }
  ChunkIndex& index() { return index_; }
  RepoCounters& counters() { return counters_; }

  // Picks up index files written since Open (by a backup that finished meanwhile).
  // A corrupt index file is skipped; the packs no index names are then read directly.
  Status Refresh();
  // Every pack file in the repository, by id (for verify and recovery).
  Result<std::vector<PackId>> ListPacks() const;

  Result<std::vector<std::string>> ListVms() const;
  Result<std::vector<std::string>> ListBackupIds(const std::string& vm) const;  // oldest first
  // Turns "latest" or an id into an existing backup; NotFound names what is missing.
  Result<BackupRef> Resolve(const std::string& vm, const std::string& id_or_latest) const;
  // Parses "VM" or "VM@BACKUP".
  Result<BackupRef> ResolveSpec(const std::string& spec) const;
  std::string BackupDir(const BackupRef& b) const;
  Result<BackupManifest> LoadManifest(const BackupRef& b) const;
  Result<FileChunks> LoadFileChunks(const BackupRef& b, const FileEntry& f) const;

  // Reads one chunk from its pack, checks it and decompresses it into *raw.
  // Unknown digests trigger one Refresh(); a damaged chunk is Corrupt, never zeros.
  Status ReadChunk(const Digest& d, std::string* raw);

 private:
  Repository(std::string path, RepoOptions o) : path_(std::move(path)), options_(o) {}
  Result<std::shared_ptr<UniqueFd>> PackFd(const PackId& id);

  std::string path_;
  RepoOptions options_;
  RepoConfig config_;
  ChunkIndex index_;
  RepoCounters counters_;
  std::mutex fd_mu_;
  std::unordered_map<PackId, std::shared_ptr<UniqueFd>> open_packs_;
  std::list<PackId> pack_lru_;
};

// Held while a backup writes. Backups share the lock (each writes its own packs, index
// file and backup directory); maintenance (a future prune) would take it exclusively.
class RepoLock {
 public:
  static Result<RepoLock> Shared(const std::string& repo);
  RepoLock(RepoLock&&) = default;
  RepoLock& operator=(RepoLock&&) = default;

 private:
  RepoLock() = default;
  UniqueFd fd_;
};


}  // namespace lm

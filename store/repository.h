// Repository: the secondary storage every backup copy lives in, as objects of a Backend
// (store/backend/): a local directory, later an object store. Names (store/FORMAT.md):
//
//   config                             what this is, chunk size, id        (JSON)
//   keys/<id>                          key slots of an encrypted repository (repo_keys.h)
//   packs/<aa>/<id>.pack               compressed chunks                   (pack.h)
//   index/<id>.idx                     digest -> pack location             (chunk_index.h)
//   backups/<vm>/<id>/...              one backup copy                     (manifest.h)
//
// An encrypted repository (the default for new ones) seals every object but its config,
// key slots, claims and leases, and every chunk payload, under its master key
// (store/crypto/repo_crypto.h); Open() unlocks it with a password.
//
// Open() is cheap enough for every CLI command; a Repository is safe to share between
// threads. Readers keep working while a backup writes: every object is immutable and
// appears whole, in the order packs, then index, then the backup copy's backup.json.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/histogram.h"
#include "store/backend/io_kind.h"
#include "store/backend/backend.h"
#include "store/backend/caching_backend.h"
#include "store/chunk_index.h"
#include "store/chunk_reader.h"
#include "store/crypto/repo_crypto.h"
#include "store/manifest.h"
#include "base/status.h"
#include "base/units.h"

namespace lm {

inline constexpr uint32_t kDefaultChunkSize = 128 * 1024;
inline constexpr uint32_t kMinChunkSize = 4 * 1024;
inline constexpr uint32_t kMaxChunkSize = 16 * 1024 * 1024;

// Where the password of an encrypted repository comes from; asked only when one is opened.
using PasswordSource = std::function<Result<std::string>()>;

struct RepoOptions {
  Env* env = nullptr;  // required: the composition root (tools/) passes it
  size_t max_open_packs = 128;  // local directory: pack files kept open for reading
  PasswordSource password;      // required for an encrypted repository
  // A media agent's local copies of metadata objects (store/backend/caching_backend.h);
  // optional, must outlive the repository.
  ObjectCache* object_cache = nullptr;
  // Where the chunk index lives (store/chunk_table.h); in memory without one.
  ChunkTableOpener chunk_table;
  Status validate() const;
};

struct InitOptions {
  uint32_t chunk_size = kDefaultChunkSize;
  bool encrypted = true;
  PasswordSource password;  // of the first key slot (encrypted only); asked once the location is fine
  ScryptParams kdf;      // for that key slot
};

struct RepoConfig {
  int version = 1;  // 1: unencrypted; 2: has "encryption"
  std::string id;
  uint32_t chunk_size = kDefaultChunkSize;
  int64_t created_ns = 0;
  bool encrypted = false;
  std::string canonical;  // version 2: the config without "mac", as the MAC covers it
  Digest mac;             // version 2
};

// Parses REPO/config; Corrupt or Unsupported naming the file and the field.
Result<RepoConfig> DecodeRepoConfig(const std::string& text, const std::string& config_path);
// Reads and parses a location's config without unlocking it (is it encrypted?).
Result<RepoConfig> ReadRepoConfig(const std::string& location, Env* env);

struct BackupRef {
  std::string vm, id;
  std::string Name() const { return vm + "@" + id; }
  // "backups/<vm>/<id>/": the prefix of the copy's objects.
  std::string Prefix() const { return "backups/" + vm + "/" + id + "/"; }
};

// Counters a media agent reports; updated with relaxed atomics.
struct RepoCounters {
  std::atomic<uint64_t> chunks_read{0}, bytes_read{0}, raw_bytes_read{0};
  // The same by kind of I/O (store/backend/io_kind.h: guest, prestage, hydrate, other).
  std::array<std::atomic<uint64_t>, kIoKinds> chunks_by_kind{}, bytes_by_kind{};
  // Each ranged read of a pack (one chunk, or a run of neighbours), however it is stored.
  LatencyHistogram read_latency;
};

class Repository : public ChunkReader {
 public:
  // Creates a repository at an empty or missing location.
  static Status Init(const std::string& location, const InitOptions& o, Env* env);
  // An unencrypted one (tests; `init --encryption none`).
  static Status Init(const std::string& location, uint32_t chunk_size, Env* env) {
    return Init(location, InitOptions{chunk_size, false, nullptr, {}}, env);
  }
  static Result<std::unique_ptr<Repository>> Open(const std::string& location,
                                                  RepoOptions options = {});
  // The same over a given backend (tests inject faults with one).
  static Result<std::unique_ptr<Repository>> Open(std::unique_ptr<Backend> backend,
                                                  RepoOptions options);

  // The location as the user named it (a directory, later a URL).
  const std::string& path() const { return backend_->location(); }
  Backend& backend() const { return *backend_; }
  const RepoConfig& config() const { return config_; }
  uint32_t chunk_size() const override { return config_.chunk_size; }
  // The keys (the identity for an unencrypted repository).
  const RepoCrypto& crypto() const { return *crypto_; }
  bool encrypted() const { return crypto_->encrypted(); }
  // The key slot the password opened ("" when unencrypted).
  const std::string& key_id() const { return key_id_; }
  void set_key_id(std::string id) { key_id_ = std::move(id); }
  Env* env() const { return options_.env; }
  ChunkIndex& index() { return index_; }
  RepoCounters& counters() { return counters_; }
  // The metadata copies' hits and misses, when opened with an object cache.
  std::optional<ObjectCacheStats> MetadataCacheStats() const {
    return caching_ ? std::optional(caching_->Stats()) : std::nullopt;
  }

  // Picks up index files written since Open (by a backup that finished meanwhile).
  // A corrupt index file is skipped; the packs no index names are then read directly.
  Status Refresh();
  // Refresh for the index objects named after the newest one known (ChunkIndex::LoadNewest).
  Status RefreshNewest();
  // Rebuilds the index from scratch (after a prune replaced index objects and packs).
  Status Reload();
  // Every pack in the repository, by id (for verify and recovery).
  Result<std::vector<PackId>> ListPacks() const;

  // VMs with any object under backups/ (a VM whose only backup was interrupted too).
  Result<std::vector<std::string>> ListVms() const;
  // Complete backup copies (those with a backup.json), oldest first.
  Result<std::vector<std::string>> ListBackupIds(const std::string& vm) const;
  // Turns "latest" or an id into an existing backup; NotFound names what is missing.
  Result<BackupRef> Resolve(const std::string& vm, const std::string& id_or_latest) const;
  // Parses "VM" or "VM@BACKUP".
  Result<BackupRef> ResolveSpec(const std::string& spec) const;
  Result<BackupManifest> LoadManifest(const BackupRef& b) const;
  Result<FileChunks> LoadFileChunks(const BackupRef& b, const FileEntry& f) const;
  // Another object of a backup copy ("profile.json"); NotFound if it has none.
  Result<std::string> ReadBackupObject(const BackupRef& b, const std::string& name) const;

  // A sealed object (index, backup copy objects) by name: opened (checked and decrypted)
  // on read, sealed on write; plain in an unencrypted repository.
  Result<std::string> ReadObject(const std::string& name) const;
  Status WriteObject(const std::string& name, std::string_view plain) const;

  // Reads one chunk from its pack, checks it and decompresses it into *raw.
  // Unknown digests trigger one Refresh(); a damaged chunk is Corrupt, never zeros.
  Status ReadChunk(const Digest& d, std::string* raw) override;
  // Reads several chunks, coalescing records that lie near each other in one pack (at most
  // kMaxCoalescedGap bytes apart) into one ranged read of at most kMaxCoalescedRead bytes:
  // on an object store one GET instead of one per chunk, and a gap read through costs less
  // than a round trip. raws[i] receives digests[i]; each chunk is checked as ReadChunk does,
  // and a group that fails is read again chunk by chunk (so a prune's move is followed).
  Status ReadChunks(const std::vector<Digest>& digests, std::vector<std::string>* raws) override;
  static constexpr uint64_t kMaxCoalescedRead = 8ull << 20;
  static constexpr uint64_t kMaxCoalescedGap = 256ull << 10;
  // How ReadChunks would read these chunks: groups of indices into digests, one group per
  // ranged read, in pack order. Unknown digests come alone. The pre-stager plans with it,
  // so each of its fetches is one request and many are in flight. With raw_bytes, also
  // each group's decompressed size (0 for an unknown digest).
  std::vector<std::vector<size_t>> GroupByRead(const std::vector<Digest>& digests,
                                               std::vector<uint64_t>* raw_bytes = nullptr) const;

 private:
  struct ReadRun {  // records of one pack read with one ranged read
    PackId pack;
    uint64_t begin = 0, end = 0;
    std::vector<std::pair<size_t, ChunkLocation>> items;  // index into the digests, where
  };
  // Groups the located digests into runs; the indices of unknown ones go to *unknown.
  std::vector<ReadRun> PlanRuns(const std::vector<Digest>& digests, std::vector<size_t>* unknown) const;
  Repository(std::unique_ptr<Backend> backend, RepoOptions o)
      : backend_(std::move(backend)), options_(o) {}
  void CountChunkRead(const ChunkLocation& loc);
  // Adds the tables of packs no index names (after a damaged index file was skipped).
  Status IndexUnindexedPacks();

  std::unique_ptr<Backend> backend_;
  RepoOptions options_;
  RepoConfig config_;
  std::shared_ptr<const RepoCrypto> crypto_ = RepoCrypto::None();
  std::string key_id_;
  ChunkIndex index_;
  std::mutex reload_mu_;
  RepoCounters counters_;
  CachingBackend* caching_ = nullptr;  // backend_ itself, when it keeps local copies
};

// The backend for a location: a directory (the only kind so far).
// A location as a daemon that changes directory can still use: a directory made absolute,
// an object-store URL (s3:...) unchanged.
std::string AbsoluteLocation(const std::string& location);
// True for a location on an object store rather than a directory.
bool IsObjectStoreLocation(const std::string& location);
Result<std::unique_ptr<Backend>> OpenBackend(const std::string& location, Env* env,
                                             size_t max_open_files = 128);

}  // namespace lm

// The media agent: `livemount mount`. Opens the repository and the read-cache, mounts the
// FUSE filesystem, serves the control socket, and runs until unmounted (livemount umount,
// fusermount3 -u) or stopped by SIGTERM/SIGINT; then it unmounts and closes the cache
// cleanly. In the background mode the command returns only once the mount is usable, or
// prints why it is not.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/nfs_export.h"
#include "base/status.h"
#include "store/repository.h"

namespace lm {

struct MountOptions {
  Env* env = nullptr;     // required: every local file (repository, cache, state) goes through it
  std::string repo, mountpoint;
  PasswordSource password;  // an encrypted repository's; the key then lives in memory only
  std::string cache_dir;  // default: /var/cache/livemount (root) or ~/.cache/livemount
  std::string state_dir;  // default: /var/lib/livemount (root) or ~/.local/state/livemount
  uint64_t cache_size = 10ull << 30;
  bool foreground = false;
  bool quiet = false;         // background: no "mounted ..." line (a command's own agent)
  bool views = true;          // cross-hypervisor views in every copy (guest/copy_views.h)
  bool nonempty = false;      // allow a mountpoint that is not empty (its files are hidden)
  bool allow_other = false;
  bool read_only = false;     // no overlays: writes fail with EROFS
  std::vector<std::string> prestage;  // VM[@BACKUP]s to pre-stage as soon as the mount is up
  bool hydrate = false;       // ... and then the rest of them (--all)
  bool nfs_export = false;    // serve the mount over NFS once it is up (--export)
  ExportOptions export_options;  // mountpoint and dir are filled in by validate()
  std::string metrics;        // ADDR:PORT to serve Prometheus metrics on (--metrics), "" for none
  int64_t expire_after = 0;   // seconds; > 0: every backup copy used gets this expiry policy
  std::string record_reads;  // benchmark option: log every read to this file
  bool debug = false;         // libfuse request tracing
  std::string log_file;       // default: stderr in the foreground, STATE_DIR/livemount.log else
  std::string log_level = "info";
  uint32_t readahead_chunks = 64;  // 8 MiB at 128 KiB chunks
  unsigned fetch_threads = 6;
  unsigned fuse_threads = 16;
  // Fills defaults and checks values and paths.
  Status validate();
};

// The state directory used when none is given: $LIVEMOUNT_STATE_DIR if set, else
// /var/lib/livemount as root, else ~/.local/state/livemount.
std::string DefaultStateDir();
// Likewise the read-cache and the chunk index: $LIVEMOUNT_CACHE_DIR if set, else
// /var/cache/livemount as root, else ~/.cache/livemount.
std::string DefaultCacheDir();

// Where a command keeps a repository's chunk index, from LIVEMOUNT_CHUNK_INDEX: "disk" (the
// default: CACHE_DIR/chunk-index, cache/chunk_table_db.h) or "memory" (as before; fine for
// small repositories, about 100 B per chunk). The opener for RepoOptions::chunk_table.
Result<ChunkTableOpener> ChunkIndexFromEnvironment(const std::string& cache_dir);

// The export options as the media agent completes them (mountpoint, STATE/export).
ExportOptions CompleteExportOptions(Env* env, ExportOptions e, const std::string& mountpoint,
                                    const std::string& state_dir, bool read_only);

// Returns the process exit code.
int RunMediaAgent(MountOptions options);

}  // namespace lm

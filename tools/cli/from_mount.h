// `backup --from-mount`: a live copy (backup + overlay) as a new backup copy, reading only
// the chunks its overlay changed (tools/cli/from_mount.cc).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/control_protocol.h"
#include "store/backup.h"
#include "store/repository.h"

namespace lm::cli {

struct FromMountCounts {
  std::string from;  // the live copy, "vm@id"
  std::atomic<uint64_t> reused{0}, read{0};  // chunks taken from it unread, and read
};

// The digest of chunk i of `f` when the mount shows there exactly what the base file holds
// in its own chunk i: no write in it, below the base limit, and of the same length.
// f.written must be sorted and disjoint (PrepareBackupFromMount makes it so).
Result<std::optional<Digest>> UnchangedChunk(const control::ChangesReply::File& f, const std::vector<Digest>& base,
                                             uint64_t chunk_size, uint64_t i);

// Asks the media agent of `mountpoint` for the copy's changes (syncing them first) and fills
// A file on a live mount that is one of a copy's views (it has user.livemount.view).
bool IsViewOnMount(const std::string& path);
// The regular files of a copy on a live mount, by path in the copy, views marked; more
// than `max_files` is an error, directories deeper than `max_depth` are not walked.
struct MountFile {
  std::string path;
  uint64_t size = 0;
  bool view = false;
};
Result<std::vector<MountFile>> ListCopyOnMount(const std::string& copy_dir, size_t max_files = SIZE_MAX,
                                               int max_depth = 64);
// o->vmdir, o->known_chunk and o->before_commit (which fails if the copy changed meanwhile).
Status PrepareBackupFromMount(Repository& repo, const std::string& mountpoint, const std::string& spec,
                              BackupOptions* o, FromMountCounts* counts);

}  // namespace lm::cli

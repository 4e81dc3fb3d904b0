// A backup copy on disk: backups/<vm>/<id>/ holding backup.json (files and their metadata),
// backup.json.sha256 (its checksum), files/<n>.fidx (the chunk digests of regular file n)
// and, optionally, profile.json. The directory is built under a temporary name and
// renamed into place last, so a backup copy is either whole or absent.
// Byte layout: store/FORMAT.md, "Backup copies".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/names.h"
#include "store/digest.h"
#include "base/status.h"

namespace lm {

inline constexpr char kFidxMagic[8] = {'L', 'M', 'F', 'I', 'D', 'X', '0', '1'};
inline constexpr size_t kFidxHeaderSize = 64;

enum class FileType { kFile, kDir, kSymlink };

struct FileEntry {
  std::string path;  // relative to the VM directory, '/'-separated, no leading '/'
  FileType type = FileType::kFile;
  uint32_t mode = 0;  // permission bits only
  uint32_t uid = 0, gid = 0;
  int64_t mtime_ns = 0, atime_ns = 0;
  uint64_t size = 0;       // regular files: logical size; symlinks: target length
  std::string target;      // symlinks
  std::string fidx;        // regular files: "files/<n>.fidx"
  bool changed = false;    // regular files: changed while being backed up (see backup.h)
  // Extended attributes (user.*, trusted.*, security.*) of files and directories.
  std::map<std::string, std::string> xattrs;
};

struct BackupManifest {
  std::string vm, id;
  int64_t time_ns = 0;  // when the backup started (UTC)
  std::string source;   // the VM directory that was backed up, for the administrator
  std::string host;
  uint32_t chunk_size = 0;
  std::vector<FileEntry> files;
  // Summary figures, as `list` prints them.
  uint64_t logical_bytes = 0;  // sum of regular file sizes
  uint64_t new_raw_bytes = 0;  // bytes of chunks this backup added to the repository
  uint64_t stored_bytes = 0;   // their size in packs (after compression)
  uint64_t zero_chunks = 0, chunks = 0, new_chunks = 0;
  double seconds = 0;
  bool has_profile = false;
};

std::string EncodeManifest(const BackupManifest& m);
Result<BackupManifest> DecodeManifest(const std::string& json, const std::string& path);

// The chunk list of one regular file.
struct FileChunks {
  uint64_t file_size = 0;
  uint32_t chunk_size = 0;
  std::vector<Digest> digests;  // all-zero digest: an all-zero chunk, not stored

  uint32_t ChunkLen(size_t i) const {
    uint64_t start = uint64_t{chunk_size} * i;
    return static_cast<uint32_t>(std::min<uint64_t>(chunk_size, file_size - start));
  }
};

std::string EncodeFidx(const FileChunks& f);
Result<FileChunks> DecodeFidx(std::string_view data, const std::string& path);

// Backup ids are UTC times, "20261125T103746Z", with "-2", "-3"... on a collision.
std::string BackupIdForTime(int64_t time_ns);
// The inverse, to the second: "20261125T103746Z[-N]" -> seconds since the epoch (UTC);
// 0 if the id is not of that form.
int64_t BackupIdTime(const std::string& id);

}  // namespace lm

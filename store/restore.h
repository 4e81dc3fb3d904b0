// Full restore of a backup copy into a directory: byte-identical files, holes where the
// backup had all-zero chunks, modes, times (and owners when run as root), symlinks.
// Each file is written under a temporary name and renamed when complete, so an
// interrupted restore never leaves a file that looks whole but is not.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "store/repository.h"

namespace lm {

struct RestoreProgress {
  uint64_t total_bytes = 0, done_bytes = 0;
  std::string current_file;
};

struct RestoreOptions {
  unsigned threads = 0;  // 0: two per core (reads overlap with decompression)
  // fsync each file before renaming it into place (default). Off: faster, but a crash
  // soon after the restore may lose restored data.
  bool sync = true;
  // Restore into a directory that is not empty (entries in the way are replaced; a
  // directory in the way of a file is an error). Without it, a non-empty DESTDIR is refused.
  bool overwrite = false;
  // Restore every file that can be restored and list the others in `failed`, instead of
  // stopping at the first damaged chunk. The caller still exits non-zero.
  bool continue_on_error = false;
  std::function<void(const RestoreProgress&)> progress;
};

struct RestoreSummary {
  size_t files = 0, dirs = 0, symlinks = 0;
  uint64_t bytes = 0, chunks_read = 0, zero_chunks = 0;
  std::vector<std::string> failed;  // with continue_on_error: what could not be restored
  double seconds = 0;
};

Result<RestoreSummary> RunRestore(Repository& repo, const BackupRef& backup,
                                  const std::string& dest, const RestoreOptions& options);

}  // namespace lm

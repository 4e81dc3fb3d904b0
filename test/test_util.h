// Helpers shared by the unit tests: scratch directories and test data.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "base/env.h"
#include "store/backend/local_backend.h"
#include "store/repository.h"

namespace lm::test {

// A fresh directory under $TMPDIR, removed with its contents when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return JoinPath(path_, name); }

 private:
  std::string path_;
};

// RepoOptions on the real filesystem (production passes its Env from tools/).
RepoOptions DefaultRepoOptions();

std::string RandomBytes(size_t n, uint64_t seed);
std::string TextBytes(size_t n);  // compressible, not repetitive at chunk scale
void WriteFile(const std::string& path, const std::string& data);
std::string ReadAll(const std::string& path);
// XORs one byte of a file in place.
void FlipByte(const std::string& path, uint64_t offset);

// A repository directory's backend that counts ranged reads of packs (coalescing tests).
class PackReadCounter : public LocalBackend {
 public:
  using LocalBackend::LocalBackend;
  Status ReadRange(const std::string& name, uint64_t offset, size_t length, std::string* out) override {
    if (name.rfind("packs/", 0) == 0) pack_reads++;
    return LocalBackend::ReadRange(name, offset, length, out);
  }
  std::atomic<int> pack_reads{0};
};

}  // namespace lm::test

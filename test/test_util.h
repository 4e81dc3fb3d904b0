// Helpers shared by the unit tests: scratch directories and test data.
#pragma once

#include <cstdint>
#include <string>

#include "base/env.h"
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

}  // namespace lm::test

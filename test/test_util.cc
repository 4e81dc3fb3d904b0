#include "test/test_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace lm::test {

RepoOptions DefaultRepoOptions() {
  RepoOptions o;
  o.env = Env::Default();
  return o;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/lmtest-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() { (void)RemoveTree(path_); }

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

std::string TextBytes(size_t n) {
  static const char* words[] = {"backup", "virtual", "machine", "disk", "block", "chunk",
                                "restore", "mount", "cache", "guest", "kernel", "boot"};
  std::mt19937 rng(42);
  std::string s;
  s.reserve(n + 16);
  while (s.size() < n) {
    s += words[rng() % 12];
    s += (rng() % 9 == 0) ? '\n' : ' ';
    if (rng() % 17 == 0) s += std::to_string(rng() % 100000);
  }
  s.resize(n);
  return s;
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void FlipByte(const std::string& path, uint64_t offset) {
  ::chmod(path.c_str(), 0644);  // packs are read-only on disk
  int fd = ::open(path.c_str(), O_RDWR);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  unsigned char c;
  if (::pread(fd, &c, 1, offset) != 1) throw std::runtime_error("short read " + path);
  c ^= 0x5a;
  if (::pwrite(fd, &c, 1, offset) != 1) throw std::runtime_error("short write " + path);
  ::close(fd);
}

}  // namespace lm::test

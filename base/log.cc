#include "base/log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <mutex>
#include <unordered_set>

namespace lm {

namespace {
std::mutex g_mu;
LogLevel g_level = LogLevel::kInfo;
FILE* g_file = nullptr;  // nullptr: stderr
std::unordered_set<std::string> g_seen;
const char* kNames[] = {"error", "warn", "info", "debug"};
}  // namespace

bool ParseLogLevel(const std::string& s, LogLevel* out) {
  for (int i = 0; i < 4; i++) {
    if (s == kNames[i]) {
      *out = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

void SetLogLevel(LogLevel level) {
  std::lock_guard lock(g_mu);
  g_level = level;
}

bool SetLogFile(const std::string& path) {
  FILE* f = nullptr;
  if (!path.empty()) {
    // O_NOFOLLOW: a symlink planted where the log goes must not redirect root's appends.
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return false;
    f = ::fdopen(fd, "a");
    if (!f) {
      ::close(fd);
      return false;
    }
    setvbuf(f, nullptr, _IOLBF, 0);
  }
  std::lock_guard lock(g_mu);
  if (g_file) std::fclose(g_file);
  g_file = f;
  return true;
}

void Log(LogLevel level, const std::string& message) {
  std::lock_guard lock(g_mu);
  if (level > g_level) return;
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[32];
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  std::fprintf(g_file ? g_file : stderr, "%s.%03dZ %-5s %s\n", ts, static_cast<int>(tv.tv_usec / 1000),
               kNames[static_cast<int>(level)], message.c_str());
}

void LogOnce(LogLevel level, const std::string& key, const std::string& message) {
  {
    std::lock_guard lock(g_mu);
    if (!g_seen.insert(key).second) return;
  }
  Log(level, message);
}

}  // namespace lm

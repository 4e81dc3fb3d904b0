// A small leveled logger for the media agent: one line per event, to stderr or a log file,
// each line with a UTC timestamp and level. Thread-safe. LogOnce() suppresses repeats of
// the same key (a damaged chunk is logged once, not on every read).
#pragma once

#include <string>

namespace lm {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

bool ParseLogLevel(const std::string& s, LogLevel* out);
void SetLogLevel(LogLevel level);
// Appends to `path` from now on ("" means stderr). False if it cannot be opened.
bool SetLogFile(const std::string& path);
void Log(LogLevel level, const std::string& message);
void LogOnce(LogLevel level, const std::string& key, const std::string& message);

inline void LogError(const std::string& m) { Log(LogLevel::kError, m); }
inline void LogWarn(const std::string& m) { Log(LogLevel::kWarn, m); }
inline void LogInfo(const std::string& m) { Log(LogLevel::kInfo, m); }
inline void LogDebug(const std::string& m) { Log(LogLevel::kDebug, m); }

}  // namespace lm

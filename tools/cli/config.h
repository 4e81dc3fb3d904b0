// The configuration file: /etc/livemount/livemount.conf, or `--config FILE` (also
// LIVEMOUNT_CONFIG), so that commands and systemd units do not repeat every path.
//
// Format: `key = value` lines (TOML's flat subset, read by CLI11's config reader); `#`
// comments; strings may be quoted; lists as ["a", "b"]. No sections. An unknown key, a
// relative path or a value of the wrong kind is an error naming the file and the key.
//
// Precedence: a command-line flag, then the environment (LIVEMOUNT_REPOSITORY,
// LIVEMOUNT_PASSWORD_FILE / LIVEMOUNT_PASSWORD, LIVEMOUNT_CACHE_DIR, LIVEMOUNT_STATE_DIR),
// then this file, then the built-in default. The four settings that have an environment
// variable are applied as that variable when it is unset (ApplyToEnvironment), so every
// command sees them the same way; the media agent's own settings become the defaults of
// `mount`'s flags.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace lm::cli {

inline constexpr const char* kDefaultConfigFile = "/etc/livemount/livemount.conf";

struct Config {
  std::string file;  // where it was read from; "" when none was
  std::optional<std::string> repository, password_file, cache_dir, state_dir;
  // The media agent (`mount`, the systemd unit).
  std::optional<std::string> mountpoint, cache_size, metrics, expire_after, log_level;
  std::optional<bool> nfs_export, allow_other, read_only, hydrate;
  std::optional<std::string> bind;
  std::optional<uint16_t> nfs_port, mount_port;
  std::vector<std::string> clients, prestage;
};

// Parses a configuration file's text; `file` names it in errors.
Result<Config> ParseConfig(const std::string& text, const std::string& file);

// The configuration the command line asks for: `--config FILE` / `--config=FILE` in argv,
// else $LIVEMOUNT_CONFIG, else kDefaultConfigFile if it exists, else an empty Config. A
// file that was named but cannot be read is an error.
Result<Config> LoadConfig(int argc, char** argv);

// Sets the environment variables of the settings that have one, where they are unset.
void ApplyToEnvironment(const Config& c);

// The configuration this process loaded (empty before main loads it).
const Config& CurrentConfig();
void SetCurrentConfig(Config c);

}  // namespace lm::cli

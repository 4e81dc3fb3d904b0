#include "tools/cli/config.h"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>

#include "base/env.h"
#include "tools/cli/commands.h"

namespace lm::cli {

namespace {

Config g_config;

using Setter = std::function<Status(Config&, const std::vector<std::string>&)>;

Result<std::string> One(const std::vector<std::string>& in) {
  if (in.size() != 1) return Status::Invalid("expected one value");
  return in[0];
}

Setter Text(std::optional<std::string> Config::*field) {
  return [field](Config& c, const std::vector<std::string>& in) -> Status {
    LM_ASSIGN_OR_RETURN(std::string v, One(in));
    if (v.empty()) return Status::Invalid("the value is empty");
    c.*field = v;
    return Status::Ok();
  };
}

Setter Path(std::optional<std::string> Config::*field) {
  return [field](Config& c, const std::vector<std::string>& in) -> Status {
    LM_ASSIGN_OR_RETURN(std::string v, One(in));
    if (v.empty() || v[0] != '/') return Status::Invalid("expected an absolute path, got '" + v + "'");
    c.*field = v;
    return Status::Ok();
  };
}

Setter Flag(std::optional<bool> Config::*field) {
  return [field](Config& c, const std::vector<std::string>& in) -> Status {
    LM_ASSIGN_OR_RETURN(std::string v, One(in));
    if (v == "true") c.*field = true;
    else if (v == "false") c.*field = false;
    else return Status::Invalid("expected true or false, got '" + v + "'");
    return Status::Ok();
  };
}

Setter Port(std::optional<uint16_t> Config::*field) {
  return [field](Config& c, const std::vector<std::string>& in) -> Status {
    LM_ASSIGN_OR_RETURN(std::string v, One(in));
    char* end = nullptr;
    unsigned long n = std::strtoul(v.c_str(), &end, 10);
    if (v.empty() || *end || n < 1 || n > 65535) return Status::Invalid("expected a port 1-65535, got '" + v + "'");
    c.*field = static_cast<uint16_t>(n);
    return Status::Ok();
  };
}

Setter List(std::vector<std::string> Config::*field) {
  return [field](Config& c, const std::vector<std::string>& in) -> Status {
    for (const std::string& v : in) {
      if (v.empty()) return Status::Invalid("a list item is empty");
    }
    c.*field = in;
    return Status::Ok();
  };
}

// Every key, named as the flag of the same meaning.
const std::map<std::string, Setter>& Keys() {
  static const std::map<std::string, Setter> keys = {
      {"repository", Text(&Config::repository)},   // a directory or s3:... location
      {"password-file", Path(&Config::password_file)},
      {"cache-dir", Path(&Config::cache_dir)},
      {"state-dir", Path(&Config::state_dir)},
      {"mountpoint", Path(&Config::mountpoint)},
      {"cache-size", Text(&Config::cache_size)},
      {"metrics", Text(&Config::metrics)},
      {"expire-after", Text(&Config::expire_after)},
      {"log-level", Text(&Config::log_level)},
      {"export", Flag(&Config::nfs_export)},
      {"allow-other", Flag(&Config::allow_other)},
      {"read-only", Flag(&Config::read_only)},
      {"hydrate", Flag(&Config::hydrate)},
      {"bind", Text(&Config::bind)},
      {"nfs-port", Port(&Config::nfs_port)},
      {"mount-port", Port(&Config::mount_port)},
      {"client", List(&Config::clients)},
      {"prestage", List(&Config::prestage)},
  };
  return keys;
}

// The value of `--config` in argv, if any ("--config F" or "--config=F").
std::optional<std::string> ConfigArgument(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--") == 0) break;
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) return std::string(argv[i + 1]);
    if (std::strncmp(argv[i], "--config=", 9) == 0) return std::string(argv[i] + 9);
  }
  return std::nullopt;
}

}  // namespace

Result<Config> ParseConfig(const std::string& text, const std::string& file) {
  Config c;
  c.file = file;
  std::vector<CLI::ConfigItem> items;
  try {
    std::istringstream in(text);
    items = CLI::ConfigTOML().from_config(in);
  } catch (const std::exception& e) {
    return Status::Invalid(file + ": " + e.what());
  }
  for (const CLI::ConfigItem& item : items) {
    if (item.name == "++" || item.name == "--") {  // the reader's section markers
      if (!item.parents.empty()) {
        return Status::Invalid(file + ": sections ([" + item.parents.front() + "]) are not used; put every key at the top");
      }
      continue;
    }
    if (!item.parents.empty()) {
      return Status::Invalid(file + ": '" + item.fullname() + "': sections are not used; put every key at the top");
    }
    auto k = Keys().find(item.name);
    if (k == Keys().end()) return Status::Invalid(file + ": unknown key '" + item.name + "'");
    Status s = k->second(c, item.inputs);
    if (!s.ok()) return Status::Invalid(file + ": " + item.name + ": " + s.message());
  }
  return c;
}

Result<Config> LoadConfig(int argc, char** argv) {
  std::string file;
  bool named = true;
  if (auto arg = ConfigArgument(argc, argv)) {
    file = *arg;
  } else if (const char* env = std::getenv("LIVEMOUNT_CONFIG"); env && *env) {
    file = env;
  } else {
    file = kDefaultConfigFile;
    named = false;
  }
  if (file.empty()) return Status::Invalid("--config: no file named");
  if (!named && !PathExists(file)) return Config{};
  auto text = CliEnv()->ReadFile(file);
  if (!text.ok()) return text.status().Context("configuration file " + file);
  if (text->size() > (1 << 20)) return Status::Invalid("configuration file " + file + ": larger than 1 MiB");
  return ParseConfig(*text, file);
}

void ApplyToEnvironment(const Config& c) {
  auto set = [](const char* name, const std::optional<std::string>& v) {
    const char* now = std::getenv(name);
    if (v && !(now && *now)) ::setenv(name, v->c_str(), 1);
  };
  set("LIVEMOUNT_REPOSITORY", c.repository);
  set("LIVEMOUNT_CACHE_DIR", c.cache_dir);
  set("LIVEMOUNT_STATE_DIR", c.state_dir);
  // A password given in the environment itself wins over the file's password-file.
  const char* pw = std::getenv("LIVEMOUNT_PASSWORD");
  if (!(pw && *pw)) set("LIVEMOUNT_PASSWORD_FILE", c.password_file);
}

const Config& CurrentConfig() { return g_config; }
void SetCurrentConfig(Config c) { g_config = std::move(c); }

}  // namespace lm::cli

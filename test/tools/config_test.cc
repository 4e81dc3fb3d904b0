// The configuration file (tools/cli/config.h): every key is read as the flag of the same
// name; an unknown key, a section, a relative path or a bad value is refused with the
// file's name; the environment wins over the file.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "tools/cli/config.h"

using namespace lm::cli;

TEST_CASE("config: every key is read") {
  auto c = ParseConfig(R"(# a comment
repository = "s3:http://rgw:7480/backups"   # a comment after a value
password-file = "/etc/livemount/password"
cache-dir = "/var/cache/lm"
state-dir = "/var/lib/lm"
mountpoint = "/srv/livemount"
cache-size = "200G"
metrics = "127.0.0.1:9464"
expire-after = "8h"
log-level = "debug"
export = true
allow-other = true
read-only = false
hydrate = true
bind = "10.0.0.5"
nfs-port = 2049
mount-port = 20048
client = ["10.0.0.0/24", "esx1"]
prestage = ["web01@latest"]
)",
                       "/etc/livemount/livemount.conf");
  REQUIRE(c.ok());
  CHECK(c->repository == "s3:http://rgw:7480/backups");
  CHECK(c->password_file == "/etc/livemount/password");
  CHECK(c->cache_dir == "/var/cache/lm");
  CHECK(c->state_dir == "/var/lib/lm");
  CHECK(c->mountpoint == "/srv/livemount");
  CHECK(c->cache_size == "200G");
  CHECK(c->metrics == "127.0.0.1:9464");
  CHECK(c->expire_after == "8h");
  CHECK(c->log_level == "debug");
  CHECK(c->nfs_export == true);
  CHECK(c->allow_other == true);
  CHECK(c->read_only == false);
  CHECK(c->hydrate == true);
  CHECK(c->bind == "10.0.0.5");
  CHECK(c->nfs_port == 2049);
  CHECK(c->mount_port == 20048);
  CHECK(c->clients == std::vector<std::string>{"10.0.0.0/24", "esx1"});
  CHECK(c->prestage == std::vector<std::string>{"web01@latest"});
}

TEST_CASE("config: what is wrong is named, with the file") {
  const std::string f = "/etc/livemount/livemount.conf";
  for (auto [text, says] : std::vector<std::pair<std::string, std::string>>{
           {"reposit = \"/x\"\n", "unknown key 'reposit'"},
           {"[mount]\nmountpoint = \"/m\"\n", "sections"},
           {"cache-dir = \"relative/dir\"\n", "cache-dir: expected an absolute path"},
           {"export = yes\n", "export: expected true or false"},
           {"nfs-port = 70000\n", "nfs-port: expected a port"},
           {"repository = \"\"\n", "repository: the value is empty"},
           {"mountpoint = [\"/a\", \"/b\"]\n", "mountpoint: expected one value"},
       }) {
    INFO(text);
    auto c = ParseConfig(text, f);
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().message().find(f) != std::string::npos);
    CHECK(c.status().message().find(says) != std::string::npos);
  }
}

TEST_CASE("config: the environment wins over the file") {
  ::setenv("LIVEMOUNT_REPOSITORY", "/from/env", 1);
  ::unsetenv("LIVEMOUNT_STATE_DIR");
  ::unsetenv("LIVEMOUNT_PASSWORD_FILE");
  ::setenv("LIVEMOUNT_PASSWORD", "secret", 1);
  Config c;
  c.repository = "/from/file";
  c.state_dir = "/state/from/file";
  c.password_file = "/pw/from/file";
  ApplyToEnvironment(c);
  CHECK(std::string(std::getenv("LIVEMOUNT_REPOSITORY")) == "/from/env");
  CHECK(std::string(std::getenv("LIVEMOUNT_STATE_DIR")) == "/state/from/file");
  // A password in the environment itself is not overridden by the file's password-file.
  CHECK(std::getenv("LIVEMOUNT_PASSWORD_FILE") == nullptr);
  for (const char* v : {"LIVEMOUNT_REPOSITORY", "LIVEMOUNT_STATE_DIR", "LIVEMOUNT_PASSWORD"}) ::unsetenv(v);
}

TEST_CASE("config: --config names the file, a named file that is missing is an error") {
  char prog[] = "livemount", opt[] = "--config", path[] = "/nonexistent/livemount.conf", cmd[] = "list";
  char* argv[] = {prog, opt, path, cmd, nullptr};
  auto c = LoadConfig(4, argv);
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message().find("/nonexistent/livemount.conf") != std::string::npos);
  char eq[] = "--config=/nonexistent/other.conf";
  char* argv2[] = {prog, eq, cmd, nullptr};
  auto c2 = LoadConfig(3, argv2);
  REQUIRE_FALSE(c2.ok());
  CHECK(c2.status().message().find("/nonexistent/other.conf") != std::string::npos);
}

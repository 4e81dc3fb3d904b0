// key list|add|remove|passwd: the passwords (key slots) of an encrypted repository.
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "store/repo_keys.h"
#include "tools/cli/commands.h"
#include "tools/cli/password.h"

namespace lm::cli {

using nlohmann::json;

namespace {

int KeyList(const std::string& repo_path, bool as_json) {
  auto repo = OpenRepo(repo_path);
  if (!repo.ok()) return Report(repo.status());
  auto keys = ListKeys(**repo);
  if (!keys.ok()) return Report(keys.status());
  if (as_json) {
    json out = json::array();
    for (const KeyInfo& k : *keys) {
      json j = {{"id", k.id}, {"current", k.current}};
      if (k.error.empty()) {
        j["created_ns"] = k.created_ns;
        j["host"] = k.host;
        j["user"] = k.user;
      } else {
        j["error"] = k.error;
      }
      out.push_back(std::move(j));
    }
    PrintJson(out);
    return 0;
  }
  fmt::print(" {:<32}  {:<25}  {:<16}  {}\n", "ID", "ADDED", "HOST", "USER");
  for (const KeyInfo& k : *keys) {
    if (!k.error.empty()) {
      fmt::print(" {:<32}  unreadable: {}\n", k.id, k.error);
      continue;
    }
    fmt::print("{}{:<32}  {:<25}  {:<16}  {}\n", k.current ? "*" : " ", k.id, ZonedLocalTime(k.created_ns), k.host,
               k.user);
  }
  fmt::print("(* the key this password opened)\n");
  return 0;
}

int KeyAdd(const std::string& repo_path, const std::string& new_file) {
  auto repo = OpenRepo(repo_path);
  if (!repo.ok()) return Report(repo.status());
  if (!(*repo)->encrypted()) return Report(Status::Invalid(repo_path + ": the repository is not encrypted: it has no keys"));
  auto pw = NewPassword(new_file, false);
  if (!pw.ok()) return Report(pw.status());
  auto id = AddKey(**repo, *pw);
  if (!id.ok()) return Report(id.status());
  fmt::print("added key {}\n", *id);
  return 0;
}

int KeyRemove(const std::string& repo_path, const std::string& id) {
  auto repo = OpenRepo(repo_path);
  if (!repo.ok()) return Report(repo.status());
  auto removed = RemoveKey(**repo, id);
  if (!removed.ok()) return Report(removed.status());
  fmt::print("removed key {}\n", *removed);
  return 0;
}

int KeyPasswd(const std::string& repo_path, const std::string& new_file) {
  auto repo = OpenRepo(repo_path);
  if (!repo.ok()) return Report(repo.status());
  if (!(*repo)->encrypted()) return Report(Status::Invalid(repo_path + ": the repository is not encrypted: it has no keys"));
  std::string old = (*repo)->key_id();
  auto pw = NewPassword(new_file, false);
  if (!pw.ok()) return Report(pw.status());
  auto id = ChangePassword(**repo, *pw);
  if (!id.ok()) return Report(id.status());
  fmt::print("changed the password: key {} replaces key {}\n", *id, old);
  return 0;
}

}  // namespace

void RegisterKeyCommands(CLI::App& app, int* exit_code) {
  auto* key = app.add_subcommand("key", "The passwords (key slots) of an encrypted repository");
  key->require_subcommand(1);
  auto repo = std::make_shared<std::string>();
  auto new_file = std::make_shared<std::string>();
  {
    auto* c = key->add_subcommand("list", "List the key slots; * marks the one the password opened");
    auto as_json = std::make_shared<bool>(false);
    AddRepoArgument(c, repo);
    c->add_flag("--json", *as_json, "Machine-readable output");
    c->callback([=] { *exit_code = KeyList(*repo, *as_json); });
  }
  {
    auto* c = key->add_subcommand("add", "Add a password (a new key slot for the same master key)");
    AddRepoArgument(c, repo);
    c->add_option("--new-password-file", *new_file, "File holding the new password (else asked twice)");
    c->callback([=] { *exit_code = KeyAdd(*repo, *new_file); });
  }
  {
    auto* c = key->add_subcommand("remove", "Remove a key slot (not the one in use)");
    auto id = std::make_shared<std::string>();
    AddRepoArgument(c, repo);
    c->add_option("ID", *id, "Key id, or a unique prefix of at least 4 characters")->required();
    c->callback([=] { *exit_code = KeyRemove(*repo, *id); });
  }
  {
    auto* c = key->add_subcommand("passwd", "Change the password: a new key slot replaces the one in use");
    AddRepoArgument(c, repo);
    c->add_option("--new-password-file", *new_file, "File holding the new password (else asked twice)");
    c->callback([=] { *exit_code = KeyPasswd(*repo, *new_file); });
  }
}

}  // namespace lm::cli

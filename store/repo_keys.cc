#include "store/repo_keys.h"

#include <pwd.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/env.h"
#include "base/json_bytes.h"

namespace lm {

using nlohmann::json;

namespace {

std::string UserName() {
  struct passwd pw, *found = nullptr;
  char buf[1024];
  if (::getpwuid_r(::geteuid(), &pw, buf, sizeof buf, &found) == 0 && found) return pw.pw_name;
  return "uid " + std::to_string(::geteuid());
}

struct Slot {
  std::string id, name;
  Result<KeyFile> key = Status::NotFound("");
};

Result<std::vector<Slot>> ReadSlots(Backend& backend) {
  LM_ASSIGN_OR_RETURN(auto objects, backend.List("keys/"));
  std::vector<Slot> out;
  for (const ObjectInfo& o : objects) {
    Slot s;
    if (!ParseKeyName(o.name, &s.id)) continue;
    s.name = o.name;
    auto text = backend.ReadAll(o.name);
    if (!text.ok() && text.status().code() == Code::kNotFound) continue;  // raced a remove
    s.key = text.ok() ? DecodeKeyFile(*text, s.id, backend.Describe(o.name)) : Result<KeyFile>(text.status());
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

Result<UnlockedKey> UnlockRepository(Backend& backend, const RepoConfig& config, std::string_view password) {
  std::string where = backend.Describe("keys");
  if (password.empty()) return Status::Denied(backend.location() + ": an empty password opens no key");
  LM_ASSIGN_OR_RETURN(auto slots, ReadSlots(backend));
  std::string damaged;
  int tried = 0;
  for (const Slot& s : slots) {
    if (!s.key.ok()) {
      damaged = s.key.status().message();
      continue;
    }
    if (s.key->repository != config.id) continue;  // a slot of another repository
    tried++;
    auto master = UnwrapMasterKey(*s.key, password);
    if (!master.ok()) {
      if (master.status().code() != Code::kDenied) return master.status();
      continue;
    }
    LM_ASSIGN_OR_RETURN(auto crypto, RepoCrypto::FromMasterKey(*master, config.id));
    if (crypto->ConfigMac(config.canonical) != config.mac) {
      return Status::Corrupt(backend.Describe("config") + ": MAC mismatch (the config was changed)");
    }
    return UnlockedKey{std::move(crypto), s.id};
  }
  if (tried == 0) {
    return Status::Corrupt(where + ": the repository is encrypted but has no usable key file" +
                           (damaged.empty() ? "" : " (" + damaged + ")"));
  }
  return Status::Denied(backend.location() + ": wrong password (no key of the repository opens with it)");
}

Result<NewEncryptedRepo> MakeEncryptedRepo(const std::string& repo_id, uint32_t chunk_size, int64_t created_ns,
                                           std::string_view password, const ScryptParams& kdf) {
  NewEncryptedRepo r;
  SecretBytes master(RandomBytes(kKeyBytes));
  LM_ASSIGN_OR_RETURN(r.key, WrapMasterKey(master, password, repo_id, kdf, HostName(), UserName(), created_ns));
  LM_ASSIGN_OR_RETURN(auto crypto, RepoCrypto::FromMasterKey(master, repo_id));
  json j = {{"format", "livemount-repository"},
            {"version", 2},
            {"id", repo_id},
            {"chunk_size", chunk_size},
            {"created_ns", created_ns},
            {"encryption", {{"cipher", "aes-256-gcm"}, {"chunk_id", "hmac-sha256"}, {"kdf", "scrypt"}}}};
  // The MAC covers the compact dump of every other field (keys sorted: nlohmann::json
  // keeps objects in a std::map), which a reader recomputes from what it parsed.
  j["mac"] = crypto->ConfigMac(j.dump()).Hex();
  r.config_text = j.dump(1) + "\n";
  return r;
}

Result<std::vector<KeyInfo>> ListKeys(Repository& repo) {
  if (!repo.encrypted()) return Status::Invalid(repo.path() + ": the repository is not encrypted: it has no keys");
  LM_ASSIGN_OR_RETURN(auto slots, ReadSlots(repo.backend()));
  std::vector<KeyInfo> out;
  for (const Slot& s : slots) {
    KeyInfo k;
    k.id = s.id;
    if (!s.key.ok()) {
      k.error = s.key.status().message();
    } else if (s.key->repository != repo.config().id) {
      k.error = repo.backend().Describe(s.name) + ": belongs to another repository";
    } else {
      k.created_ns = s.key->created_ns;
      k.host = s.key->host;
      k.user = s.key->user;
      k.current = s.id == repo.key_id();
    }
    out.push_back(std::move(k));
  }
  return out;
}

Result<std::string> AddKey(Repository& repo, std::string_view new_password, const ScryptParams& kdf) {
  if (!repo.encrypted()) return Status::Invalid(repo.path() + ": the repository is not encrypted: it has no keys");
  LM_ASSIGN_OR_RETURN(KeyFile k, WrapMasterKey(repo.crypto().master_key(), new_password, repo.config().id, kdf,
                                               HostName(), UserName(), repo.env()->NowMicros() * 1000));
  LM_RETURN_IF_ERROR(repo.backend().Create(KeyObjectName(k.id), EncodeKeyFile(k)));
  return k.id;
}

Result<std::string> RemoveKey(Repository& repo, const std::string& id_or_prefix) {
  if (!repo.encrypted()) return Status::Invalid(repo.path() + ": the repository is not encrypted: it has no keys");
  if (id_or_prefix.size() < 4) return Status::Invalid("key id '" + id_or_prefix + "': give at least 4 characters");
  LM_ASSIGN_OR_RETURN(auto objects, repo.backend().List("keys/"));  // names suffice: no slot is read
  std::vector<std::string> matches;
  std::string id;
  for (const ObjectInfo& o : objects)
    if (ParseKeyName(o.name, &id) && id.compare(0, id_or_prefix.size(), id_or_prefix) == 0) matches.push_back(id);
  if (matches.empty()) return Status::NotFound(repo.path() + ": no key '" + id_or_prefix + "'");
  if (matches.size() > 1) return Status::Invalid("key id '" + id_or_prefix + "' is ambiguous: give more characters");
  if (matches[0] == repo.key_id()) {
    return Status::Busy("key " + matches[0] + " is the one this password opened: refusing to remove it "
                        "(use `key passwd` to change the password, or open with another key)");
  }
  LM_RETURN_IF_ERROR(repo.backend().Delete(KeyObjectName(matches[0])));
  return matches[0];
}

Result<std::string> ChangePassword(Repository& repo, std::string_view new_password, const ScryptParams& kdf) {
  std::string old = repo.key_id();
  LM_ASSIGN_OR_RETURN(std::string id, AddKey(repo, new_password, kdf));
  repo.set_key_id(id);
  Status s = repo.backend().Delete(KeyObjectName(old));
  if (!s.ok()) return s.Context("the new key " + id + " was added; removing the old key " + old);
  return id;
}

}  // namespace lm

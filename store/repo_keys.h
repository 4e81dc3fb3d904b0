// The key slots of an encrypted repository (keys/<id>, store/crypto/key_file.h): unlocking
// it with a password, and `livemount key list|add|remove|passwd`. Every slot wraps the same
// master key, so adding or removing a password never rewrites data. A slot is one
// write-once object: adding one is atomic, and `passwd` adds the new slot before it
// removes the old, so a crash in between leaves both passwords working, never none.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "store/backend/backend.h"
#include "store/crypto/key_file.h"
#include "store/crypto/repo_crypto.h"
#include "store/repository.h"

namespace lm {

struct UnlockedKey {
  std::shared_ptr<const RepoCrypto> crypto;
  std::string key_id;
};

// Tries every key slot of the repository whose config is `config` with `password`;
// Denied ("wrong password") when none opens; checks the config's MAC with the key found.
Result<UnlockedKey> UnlockRepository(Backend& backend, const RepoConfig& config, std::string_view password);

// The config of a new encrypted repository and its first key slot, ready to be written.
struct NewEncryptedRepo {
  std::string config_text;
  KeyFile key;
};
Result<NewEncryptedRepo> MakeEncryptedRepo(const std::string& repo_id, uint32_t chunk_size, int64_t created_ns,
                                           std::string_view password, const ScryptParams& kdf);

struct KeyInfo {
  std::string id;
  int64_t created_ns = 0;
  std::string host, user;
  bool current = false;  // the slot this session's password opened
  std::string error;     // a slot that cannot be read: what is wrong with it
};
Result<std::vector<KeyInfo>> ListKeys(Repository& repo);
// A new slot for `new_password`; returns its id.
Result<std::string> AddKey(Repository& repo, std::string_view new_password, const ScryptParams& kdf = {});
// Removes a slot named by its id or a unique prefix of it (at least 4 characters); the
// slot in use is refused (use passwd), so a repository always keeps an openable slot.
Result<std::string> RemoveKey(Repository& repo, const std::string& id_or_prefix);
// A new slot for `new_password`, then the current one goes; returns the new id.
Result<std::string> ChangePassword(Repository& repo, std::string_view new_password, const ScryptParams& kdf = {});

}  // namespace lm

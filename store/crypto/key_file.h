// Key slots: keys/<keyid>, one per password, each wrapping the same master key
// (store/FORMAT.md, "Key files"). A password is stretched with scrypt into a key-encryption
// key, which seals the master key with AES-256-GCM; the associated data binds the slot to
// its repository and its own id, so a slot copied from another repository or renamed does
// not open. A key file may have been written by someone else: every field is checked, and
// scrypt parameters are bounded before any memory is spent on them.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "store/crypto/primitives.h"

namespace lm {

struct KeyFile {
  std::string id;          // 32 hex: the object is keys/<id>
  std::string repository;  // the config's id
  int64_t created_ns = 0;
  std::string host, user;  // who added it (shown by key list)
  ScryptParams kdf;
  std::string salt;    // 32 random bytes
  std::string sealed;  // nonce | AES-256-GCM(master key) | tag
};

// True for a key object name: keys/<32 lowercase hex>.
bool ParseKeyName(const std::string& name, std::string* id);
std::string KeyObjectName(const std::string& id);

std::string EncodeKeyFile(const KeyFile& k);
// `id` comes from the object's name; `where` names the file in errors.
Result<KeyFile> DecodeKeyFile(const std::string& text, const std::string& id, const std::string& where);

// A new slot (fresh id and salt) opening `master` with `password`.
Result<KeyFile> WrapMasterKey(const SecretBytes& master, std::string_view password, const std::string& repo_id,
                              const ScryptParams& kdf, const std::string& host, const std::string& user,
                              int64_t created_ns);
// The master key if `password` opens this slot; Denied if it does not.
Result<SecretBytes> UnwrapMasterKey(const KeyFile& k, std::string_view password);

}  // namespace lm

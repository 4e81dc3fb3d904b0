// What a repository's master key does (store/FORMAT.md, "Encryption"). One 32-byte random
// master key per repository; HKDF-SHA-256 derives from it, with the repository id as salt:
//
//   data key     AES-256-GCM for chunk payloads in packs and for sealed objects
//   chunk id key HMAC-SHA-256 of a chunk's bytes = its id, so ids reveal nothing about
//                which known blocks (a distribution's files) a VM holds; dedup still works
//                inside the repository, where everyone uses the same key
//   config key   HMAC-SHA-256 over the config, so its fields cannot be changed unnoticed
//
// An unencrypted repository (init --encryption none, and every repository of format 1)
// has the identity RepoCrypto: SHA-256 ids, objects and payloads stored as they are.
// Shared read-only between threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "store/crypto/primitives.h"
#include "store/digest.h"

namespace lm {

inline constexpr char kSealMagic[8] = {'L', 'M', 'S', 'E', 'A', 'L', '0', '1'};

class RepoCrypto {
 public:
  // No encryption: SHA-256 ids, nothing sealed.
  static std::shared_ptr<const RepoCrypto> None();
  // The keys derived from a repository's master key.
  static Result<std::shared_ptr<const RepoCrypto>> FromMasterKey(const SecretBytes& master,
                                                                 const std::string& repo_id);

  bool encrypted() const { return encrypted_; }
  // The master key, for wrapping it into another key slot (key add, key passwd).
  const SecretBytes& master_key() const { return master_; }

  // A chunk's id: HMAC-SHA-256 under the chunk id key, or SHA-256 when unencrypted.
  Digest ChunkId(const void* data, size_t n) const;
  Digest ChunkId(std::string_view s) const { return ChunkId(s.data(), s.size()); }

  // A chunk's stored bytes from its compressed bytes: nonce | ciphertext | tag, with the
  // record header as associated data (so a payload cannot move to another digest or
  // length). Unencrypted: a copy. `*out` is replaced.
  Status SealPayload(std::string_view record_header, std::string_view compressed, std::string* out) const;
  // The inverse, into *out (replaced); Corrupt naming `where` if the tag does not verify.
  Status OpenPayload(std::string_view record_header, std::string_view stored, std::string* out,
                     const std::string& where) const;
  // Stored bytes of a payload of n compressed bytes.
  size_t StoredSize(size_t n) const { return encrypted_ ? n + kSealOverhead : n; }

  // An object (index, backup.json, file index, profile): "LMSEAL01" | nonce | ciphertext
  // | tag, with "LMSEAL01" and the object's name as associated data (so it cannot be moved
  // to another name). Unencrypted: the plaintext itself.
  Result<std::string> SealObject(const std::string& name, std::string_view plain) const;
  // The inverse; Corrupt naming `where` when the object is not sealed or was changed.
  Result<std::string> OpenObject(const std::string& name, std::string data, const std::string& where) const;

  // The MAC of a config's canonical text (encrypted repositories only).
  Digest ConfigMac(std::string_view canonical) const;

 private:
  RepoCrypto() = default;
  bool encrypted_ = false;
  SecretBytes master_, data_key_;
  std::unique_ptr<HmacSha256> chunk_id_, config_mac_;
};

}  // namespace lm

// The cryptographic building blocks of an encrypted repository, all from libcrypto
// (OpenSSL 3): AES-256-GCM, HMAC-SHA-256, HKDF-SHA-256, scrypt and the system's CSPRNG.
// Nothing here knows about repositories; store/crypto/repo_crypto.h puts them together.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "store/digest.h"

namespace lm {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;
// nonce + tag: what sealing adds to a plaintext.
inline constexpr size_t kSealOverhead = kNonceBytes + kTagBytes;

// Key material that is wiped when it goes (OPENSSL_cleanse), so keys do not linger in
// freed heap memory. Never printed, never written unwrapped.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::string bytes) : bytes_(std::move(bytes)) {}
  SecretBytes(const SecretBytes&) = default;
  SecretBytes& operator=(const SecretBytes&) = default;
  ~SecretBytes();
  const std::string& bytes() const { return bytes_; }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }

 private:
  std::string bytes_;
};

// n bytes from the operating system's CSPRNG (RAND_bytes).
std::string RandomBytes(size_t n);

// AES-256-GCM with a fresh random 96-bit nonce: appends nonce | ciphertext | tag to *out.
Status AeadSeal(const SecretBytes& key, std::string_view aad, std::string_view plain, std::string* out);
// The inverse: writes the plaintext (sealed.size() - kSealOverhead bytes) to `out`.
// False when the tag does not verify: wrong key, other aad, or any byte changed.
bool AeadOpen(const SecretBytes& key, std::string_view aad, std::string_view sealed, char* out);

// HMAC-SHA-256 under one key, for many messages from many threads: the key's inner and
// outer SHA-256 states are computed once and copied per message.
class HmacSha256 {
 public:
  explicit HmacSha256(const SecretBytes& key);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;
  Digest Of(const void* data, size_t n) const;

 private:
  void* inner_;  // EVP_MD_CTX after K xor ipad
  void* outer_;  // EVP_MD_CTX after K xor opad
};
// HKDF-SHA-256 (RFC 5869): `n` bytes for `info` from input key material `ikm`.
Result<SecretBytes> Hkdf(const SecretBytes& ikm, std::string_view salt, std::string_view info, size_t n);

// scrypt parameters: cost n (a power of two), block size r, parallelism p.
struct ScryptParams {
  uint64_t n = uint64_t{1} << 17;  // 128 MiB with r = 8: OWASP's recommendation
  uint32_t r = 8;
  uint32_t p = 1;
  // Bounds for parameters read from a key file someone else may have written: at most
  // 1 GiB of memory, so a crafted key file cannot exhaust the machine.
  Status Check() const;
};
// A key of kKeyBytes from a password (EVP_PBE_scrypt).
Result<SecretBytes> Scrypt(std::string_view password, std::string_view salt, const ScryptParams& p);

}  // namespace lm

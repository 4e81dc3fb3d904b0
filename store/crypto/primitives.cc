#include "store/crypto/primitives.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <sys/random.h>

#include <cstring>
#include <memory>

namespace lm {

namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

const unsigned char* U(const char* p) { return reinterpret_cast<const unsigned char*>(p); }
unsigned char* U(char* p) { return reinterpret_cast<unsigned char*>(p); }

// libcrypto fails here only when out of memory or misbuilt.
Status CryptoFailure(const char* what) { return Status::IoError(std::string("libcrypto failed: ") + what); }

}  // namespace

SecretBytes::~SecretBytes() {
  if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
}

std::string RandomBytes(size_t n) {
  // getrandom() from the kernel's CSPRNG: blocks only until it is seeded at boot.
  std::string out(n, '\0');
  for (size_t got = 0; got < n;) {
    ssize_t r = ::getrandom(out.data() + got, n - got, 0);
    if (r > 0) got += static_cast<size_t>(r);
  }
  return out;
}

Status AeadSeal(const SecretBytes& key, std::string_view aad, std::string_view plain, std::string* out) {
  if (key.size() != kKeyBytes) return Status::Invalid("AES-256-GCM: key of the wrong size");
  size_t at = out->size();
  std::string nonce_bytes = RandomBytes(kNonceBytes);
  out->resize(at + kNonceBytes + plain.size() + kTagBytes);
  char* nonce = out->data() + at;
  char* body = nonce + kNonceBytes;
  std::memcpy(nonce, nonce_bytes.data(), kNonceBytes);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key.bytes().data()), U(nonce)) != 1 ||
      (!aad.empty() && EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(aad.data()), static_cast<int>(aad.size())) != 1) ||
      EVP_EncryptUpdate(ctx.get(), U(body), &len, U(plain.data()), static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), U(body) + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, body + plain.size()) != 1) {
    out->resize(at);
    return CryptoFailure("AES-256-GCM encryption");
  }
  return Status::Ok();
}

bool AeadOpen(const SecretBytes& key, std::string_view aad, std::string_view sealed, char* out) {
  if (sealed.size() < kSealOverhead || key.size() != kKeyBytes) return false;
  const char* nonce = sealed.data();
  std::string_view body = sealed.substr(kNonceBytes, sealed.size() - kSealOverhead);
  std::string tag(sealed.substr(sealed.size() - kTagBytes));
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key.bytes().data()), U(nonce)) != 1 ||
      (!aad.empty() && EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(aad.data()), static_cast<int>(aad.size())) != 1) ||
      EVP_DecryptUpdate(ctx.get(), U(out), &len, U(body.data()), static_cast<int>(body.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1) {
    return false;
  }
  // The tag is checked here: on failure the plaintext written to `out` must not be used.
  return EVP_DecryptFinal_ex(ctx.get(), U(out) + len, &len) == 1;
}

HmacSha256::HmacSha256(const SecretBytes& key) : inner_(EVP_MD_CTX_new()), outer_(EVP_MD_CTX_new()) {
  // RFC 2104 with a 64-byte block: keys longer than a block are hashed first.
  std::string k = key.bytes();
  if (k.size() > 64) {
    Digest d = Digest::Of(k);
    k.assign(reinterpret_cast<const char*>(d.bytes.data()), d.bytes.size());
  }
  k.resize(64, '\0');
  std::string ipad(64, '\0'), opad(64, '\0');
  for (size_t i = 0; i < 64; i++) {
    ipad[i] = static_cast<char>(k[i] ^ 0x36);
    opad[i] = static_cast<char>(k[i] ^ 0x5c);
  }
  auto* in = static_cast<EVP_MD_CTX*>(inner_);
  auto* out = static_cast<EVP_MD_CTX*>(outer_);
  EVP_DigestInit_ex(in, EVP_sha256(), nullptr);
  EVP_DigestUpdate(in, ipad.data(), 64);
  EVP_DigestInit_ex(out, EVP_sha256(), nullptr);
  EVP_DigestUpdate(out, opad.data(), 64);
  OPENSSL_cleanse(k.data(), k.size());
  OPENSSL_cleanse(ipad.data(), ipad.size());
  OPENSSL_cleanse(opad.data(), opad.size());
}

HmacSha256::~HmacSha256() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(inner_));
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(outer_));
}

Digest HmacSha256::Of(const void* data, size_t n) const {
  Digest inner, d;
  unsigned int len = 0;
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> c(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_MD_CTX_copy_ex(c.get(), static_cast<const EVP_MD_CTX*>(inner_));
  EVP_DigestUpdate(c.get(), data, n);
  EVP_DigestFinal_ex(c.get(), inner.bytes.data(), &len);
  EVP_MD_CTX_copy_ex(c.get(), static_cast<const EVP_MD_CTX*>(outer_));
  EVP_DigestUpdate(c.get(), inner.bytes.data(), inner.bytes.size());
  EVP_DigestFinal_ex(c.get(), d.bytes.data(), &len);
  return d;
}

Result<SecretBytes> Hkdf(const SecretBytes& ikm, std::string_view salt, std::string_view info, size_t n) {
  std::string out(n, '\0');
  std::unique_ptr<EVP_PKEY_CTX, void (*)(EVP_PKEY_CTX*)> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr),
                                                           EVP_PKEY_CTX_free);
  size_t len = n;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) <= 0 ||
      EVP_PKEY_CTX_set1_hkdf_salt(ctx.get(), U(salt.data()), static_cast<int>(salt.size())) <= 0 ||
      EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), U(ikm.bytes().data()), static_cast<int>(ikm.size())) <= 0 ||
      EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), U(info.data()), static_cast<int>(info.size())) <= 0 ||
      EVP_PKEY_derive(ctx.get(), U(out.data()), &len) <= 0 || len != n) {
    return CryptoFailure("HKDF-SHA-256");
  }
  return SecretBytes(std::move(out));
}

Status ScryptParams::Check() const {
  if (n < 1024 || n > (uint64_t{1} << 22) || (n & (n - 1)) != 0) {
    return Status::Invalid("scrypt n " + std::to_string(n) + " is not a power of two from 2^10 to 2^22");
  }
  if (r < 1 || r > 32 || p < 1 || p > 16) return Status::Invalid("scrypt r or p out of range");
  if (128 * n * r * p > (uint64_t{1} << 30)) return Status::Invalid("scrypt parameters need more than 1 GiB");
  return Status::Ok();
}

Result<SecretBytes> Scrypt(std::string_view password, std::string_view salt, const ScryptParams& p) {
  LM_RETURN_IF_ERROR(p.Check());
  std::string key(kKeyBytes, '\0');
  uint64_t maxmem = 128 * p.n * p.r * p.p + (uint64_t{64} << 20);
  if (EVP_PBE_scrypt(password.data(), password.size(), U(salt.data()), salt.size(), p.n, p.r, p.p,
                     maxmem, U(key.data()), key.size()) != 1) {
    return CryptoFailure("scrypt (out of memory?)");
  }
  return SecretBytes(std::move(key));
}

}  // namespace lm

#include "store/crypto/repo_crypto.h"

#include <cstring>

namespace lm {

std::shared_ptr<const RepoCrypto> RepoCrypto::None() {
  static const std::shared_ptr<const RepoCrypto> none(new RepoCrypto());
  return none;
}

Result<std::shared_ptr<const RepoCrypto>> RepoCrypto::FromMasterKey(const SecretBytes& master,
                                                                    const std::string& repo_id) {
  if (master.size() != kKeyBytes) return Status::Corrupt("master key of the wrong size");
  std::shared_ptr<RepoCrypto> c(new RepoCrypto());
  c->encrypted_ = true;
  c->master_ = master;
  LM_ASSIGN_OR_RETURN(c->data_key_, Hkdf(master, repo_id, "livemount data key v1", kKeyBytes));
  LM_ASSIGN_OR_RETURN(SecretBytes id_key, Hkdf(master, repo_id, "livemount chunk id key v1", kKeyBytes));
  LM_ASSIGN_OR_RETURN(SecretBytes config_key, Hkdf(master, repo_id, "livemount config key v1", kKeyBytes));
  c->chunk_id_ = std::make_unique<HmacSha256>(id_key);
  c->config_mac_ = std::make_unique<HmacSha256>(config_key);
  return std::shared_ptr<const RepoCrypto>(std::move(c));
}

Digest RepoCrypto::ChunkId(const void* data, size_t n) const {
  return encrypted_ ? chunk_id_->Of(data, n) : Digest::Of(data, n);
}

Status RepoCrypto::SealPayload(std::string_view record_header, std::string_view compressed,
                               std::string* out) const {
  out->clear();
  if (!encrypted_) {
    out->assign(compressed);
    return Status::Ok();
  }
  return AeadSeal(data_key_, record_header, compressed, out);
}

Status RepoCrypto::OpenPayload(std::string_view record_header, std::string_view stored, std::string* out,
                               const std::string& where) const {
  if (!encrypted_) {
    out->assign(stored);
    return Status::Ok();
  }
  if (stored.size() < kSealOverhead) return Status::Corrupt(where + ": encrypted chunk too short");
  out->resize(stored.size() - kSealOverhead);
  if (!AeadOpen(data_key_, record_header, stored, out->data())) {
    out->clear();
    return Status::Corrupt(where + ": authentication failed (the encrypted chunk was changed)");
  }
  return Status::Ok();
}

namespace {
std::string ObjectAad(const std::string& name) { return std::string(kSealMagic, 8) + name; }
}  // namespace

Result<std::string> RepoCrypto::SealObject(const std::string& name, std::string_view plain) const {
  if (!encrypted_) return std::string(plain);
  std::string out(kSealMagic, 8);
  LM_RETURN_IF_ERROR(AeadSeal(data_key_, ObjectAad(name), plain, &out));
  return out;
}

Result<std::string> RepoCrypto::OpenObject(const std::string& name, std::string data,
                                           const std::string& where) const {
  if (!encrypted_) return data;
  if (data.size() < 8 + kSealOverhead || std::memcmp(data.data(), kSealMagic, 8) != 0) {
    return Status::Corrupt(where + ": not an encrypted object of this repository");
  }
  std::string plain(data.size() - 8 - kSealOverhead, '\0');
  if (!AeadOpen(data_key_, ObjectAad(name), std::string_view(data).substr(8), plain.data())) {
    return Status::Corrupt(where + ": authentication failed (the object was changed or moved)");
  }
  return plain;
}

Digest RepoCrypto::ConfigMac(std::string_view canonical) const {
  return encrypted_ ? config_mac_->Of(canonical.data(), canonical.size()) : Digest{};
}

}  // namespace lm

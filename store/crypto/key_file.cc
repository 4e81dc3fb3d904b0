#include "store/crypto/key_file.h"

#include <nlohmann/json.hpp>

#include "base/env.h"
#include "base/json_bytes.h"

namespace lm {

using nlohmann::json;

namespace {

bool IsLowerHex(const std::string& s, size_t len) {
  if (s.size() != len) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string WrapAad(const std::string& repo_id, const std::string& key_id) {
  return std::string("livemount-key\0", 14) + repo_id + '\0' + key_id;
}

}  // namespace

bool ParseKeyName(const std::string& name, std::string* id) {
  if (name.size() != 5 + 32 || name.compare(0, 5, "keys/") != 0) return false;
  std::string s = name.substr(5);
  if (!IsLowerHex(s, 32)) return false;
  *id = s;
  return true;
}

std::string KeyObjectName(const std::string& id) { return "keys/" + id; }

std::string EncodeKeyFile(const KeyFile& k) {
  json j = {{"format", "livemount-key"},
            {"version", 1},
            {"repository", k.repository},
            {"created_ns", k.created_ns},
            {"kdf", {{"name", "scrypt"}, {"n", k.kdf.n}, {"r", k.kdf.r}, {"p", k.kdf.p}, {"salt", HexEncode(k.salt)}}},
            {"cipher", "aes-256-gcm"},
            {"sealed", HexEncode(k.sealed)}};
  SetBytesField(j, "host", k.host);
  SetBytesField(j, "user", k.user);
  return j.dump(1) + "\n";
}

Result<KeyFile> DecodeKeyFile(const std::string& text, const std::string& id, const std::string& where) {
  auto bad = [&](const std::string& what) { return Status::Corrupt(where + ": " + what); };
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("format", json()) != "livemount-key") {
    return bad("not a livemount key file");
  }
  if (j.value("version", json()) != 1) return Status::Unsupported(where + ": key file version is not 1");
  KeyFile k;
  k.id = id;
  auto str = [&](const char* field, std::string* out) {
    auto it = j.find(field);
    if (it == j.end() || !it->is_string()) return false;
    *out = it->get<std::string>();
    return true;
  };
  std::string salt_hex, sealed_hex, cipher;
  if (!str("repository", &k.repository) || !IsLowerHex(k.repository, 32)) return bad("field 'repository' is not a repository id");
  if (!str("cipher", &cipher) || cipher != "aes-256-gcm") return bad("field 'cipher' is not aes-256-gcm");
  if (!str("sealed", &sealed_hex) || !HexDecode(sealed_hex, &k.sealed) ||
      k.sealed.size() != kKeyBytes + kSealOverhead) {
    return bad("field 'sealed' is not a sealed 32-byte key");
  }
  auto kdf = j.find("kdf");
  if (kdf == j.end() || !kdf->is_object() || kdf->value("name", json()) != "scrypt") {
    return bad("field 'kdf' is not scrypt");
  }
  for (const char* f : {"n", "r", "p"}) {
    auto it = kdf->find(f);
    if (it == kdf->end() || !it->is_number_unsigned()) return bad(std::string("kdf field '") + f + "' is not a number");
  }
  k.kdf.n = (*kdf)["n"].get<uint64_t>();
  uint64_t r = (*kdf)["r"].get<uint64_t>(), p = (*kdf)["p"].get<uint64_t>();
  if (r > 1024 || p > 1024) return bad("scrypt r or p out of range");
  k.kdf.r = static_cast<uint32_t>(r);
  k.kdf.p = static_cast<uint32_t>(p);
  Status params = k.kdf.Check();
  if (!params.ok()) return bad(params.message());
  auto salt = kdf->find("salt");
  if (salt == kdf->end() || !salt->is_string() || !HexDecode(salt->get<std::string>(), &k.salt) ||
      k.salt.size() < 16 || k.salt.size() > 64) {
    return bad("kdf field 'salt' is not 16 to 64 bytes of hex");
  }
  auto created = j.find("created_ns");
  if (created != j.end() && created->is_number_integer()) k.created_ns = created->get<int64_t>();
  auto host = GetBytesField(j, "host", where);
  if (host.ok()) k.host = *host;
  auto user = GetBytesField(j, "user", where);
  if (user.ok()) k.user = *user;
  return k;
}

Result<KeyFile> WrapMasterKey(const SecretBytes& master, std::string_view password, const std::string& repo_id,
                              const ScryptParams& kdf, const std::string& host, const std::string& user,
                              int64_t created_ns) {
  if (password.empty()) return Status::Invalid("an empty password is not allowed");
  KeyFile k;
  k.id = RandomHex(16);
  k.repository = repo_id;
  k.created_ns = created_ns;
  k.host = host;
  k.user = user;
  k.kdf = kdf;
  k.salt = RandomBytes(32);
  LM_ASSIGN_OR_RETURN(SecretBytes kek, Scrypt(password, k.salt, kdf));
  LM_RETURN_IF_ERROR(AeadSeal(kek, WrapAad(repo_id, k.id), master.bytes(), &k.sealed));
  return k;
}

Result<SecretBytes> UnwrapMasterKey(const KeyFile& k, std::string_view password) {
  LM_ASSIGN_OR_RETURN(SecretBytes kek, Scrypt(password, k.salt, k.kdf));
  std::string master(kKeyBytes, '\0');
  if (!AeadOpen(kek, WrapAad(k.repository, k.id), k.sealed, master.data())) {
    return Status::Denied("key " + k.id.substr(0, 8) + " does not open with this password");
  }
  return SecretBytes(std::move(master));
}

}  // namespace lm

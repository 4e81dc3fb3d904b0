// Encryption at rest: the primitives against published test vectors, key slots, and an
// encrypted repository end to end (what is sealed, what a wrong password or a changed
// byte does).
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>

#include "base/json_bytes.h"
#include "store/backup.h"
#include "store/crypto/key_file.h"
#include "store/crypto/primitives.h"
#include "store/crypto/repo_crypto.h"
#include "store/repo_keys.h"
#include "store/restore.h"
#include "store/verify.h"
#include "test/test_util.h"

using namespace lm;

namespace {

// Cheap scrypt for tests (production uses ScryptParams{} = 2^17).
const ScryptParams kFastKdf{1024, 8, 1};

SecretBytes Key(char fill) { return SecretBytes(std::string(kKeyBytes, fill)); }

std::string Hex(const Digest& d) { return d.Hex(); }

Status InitEncrypted(const std::string& path, const std::string& password) {
  InitOptions o;
  o.chunk_size = 4096;
  o.encrypted = true;
  o.password = [password]() -> Result<std::string> { return password; };
  o.kdf = kFastKdf;
  return Repository::Init(path, o, Env::Default());
}

Result<std::unique_ptr<Repository>> OpenWith(const std::string& path, const std::string& password) {
  RepoOptions o = test::DefaultRepoOptions();
  o.password = [password]() -> Result<std::string> { return password; };
  return Repository::Open(path, o);
}

std::vector<std::string> FilesUnder(const std::string& root) {
  std::vector<std::string> out;
  for (auto& e : std::filesystem::recursive_directory_iterator(root))
    if (e.is_regular_file()) out.push_back(e.path().string());
  return out;
}

// An encrypted repository dir/repo (password "pw") with one backup copy, vm1, of one
// 40 KiB random disk dir/vm/disk-flat.vmdk.
void BackUpOneDisk(const test::TempDir& dir, uint64_t seed) {
  REQUIRE(InitEncrypted(dir / "repo", "pw").ok());
  REQUIRE(MkdirAll(dir / "vm").ok());
  test::WriteFile(dir / "vm/disk-flat.vmdk", test::RandomBytes(40 * 1024, seed));
  auto r = OpenWith(dir / "repo", "pw");
  REQUIRE(r.ok());
  BackupOptions bo;
  bo.vm = "vm1";
  bo.vmdir = dir / "vm";
  REQUIRE(RunBackup(**r, bo).ok());
}

// The one file under root whose name ends in `suffix`, made writable for a test to damage.
std::string WritableFileEnding(const std::string& root, const std::string& suffix) {
  std::string found;
  for (const std::string& f : FilesUnder(root))
    if (f.size() > suffix.size() && f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0) found = f;
  REQUIRE(!found.empty());
  ::chmod(found.c_str(), 0600);
  return found;
}

}  // namespace

TEST_CASE("HMAC-SHA-256 matches RFC 4231", "[crypto]") {
  // Test case 2: key "Jefe".
  HmacSha256 h(SecretBytes("Jefe"));
  std::string m = "what do ya want for nothing?";
  CHECK(Hex(h.Of(m.data(), m.size())) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: a key longer than the block (131 bytes of 0xaa) is hashed first.
  HmacSha256 long_key(SecretBytes(std::string(131, '\xaa')));
  std::string m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
  CHECK(Hex(long_key.Of(m6.data(), m6.size())) ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST_CASE("scrypt matches RFC 7914 and bounds its parameters", "[crypto]") {
  auto k = Scrypt("password", "NaCl", ScryptParams{1024, 8, 16});
  REQUIRE(k.ok());
  // The first 32 of the RFC's 64 bytes (PBKDF2 output blocks do not depend on the length).
  CHECK(HexEncode(k->bytes()) == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162");
  CHECK_FALSE(ScryptParams{1000, 8, 1}.Check().ok());             // not a power of two
  CHECK_FALSE(ScryptParams{uint64_t{1} << 30, 8, 1}.Check().ok());  // 1 TiB of memory
  CHECK_FALSE(ScryptParams{uint64_t{1} << 20, 8, 2}.Check().ok());  // 2 GiB
  CHECK(ScryptParams{}.Check().ok());
}

TEST_CASE("HKDF-SHA-256 matches RFC 5869", "[crypto]") {
  // Test case 1.
  std::string ikm(22, '\x0b'), salt, info;
  REQUIRE(HexDecode("000102030405060708090a0b0c", &salt));
  REQUIRE(HexDecode("f0f1f2f3f4f5f6f7f8f9", &info));
  auto okm = Hkdf(SecretBytes(ikm), salt, info, 42);
  REQUIRE(okm.ok());
  CHECK(HexEncode(okm->bytes()) ==
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST_CASE("AES-256-GCM sealing detects every change", "[crypto]") {
  std::string plain = test::TextBytes(1000), sealed;
  REQUIRE(AeadSeal(Key('k'), "aad", plain, &sealed).ok());
  REQUIRE(sealed.size() == plain.size() + kSealOverhead);
  CHECK(sealed.find(plain.substr(0, 32)) == std::string::npos);
  std::string out(plain.size(), '\0');
  REQUIRE(AeadOpen(Key('k'), "aad", sealed, out.data()));
  CHECK(out == plain);
  // A fresh nonce each time: the same plaintext never seals to the same bytes.
  std::string again;
  REQUIRE(AeadSeal(Key('k'), "aad", plain, &again).ok());
  CHECK(again != sealed);
  CHECK_FALSE(AeadOpen(Key('K'), "aad", sealed, out.data()));
  CHECK_FALSE(AeadOpen(Key('k'), "aaD", sealed, out.data()));
  for (size_t at : {size_t{0}, kNonceBytes, sealed.size() / 2, sealed.size() - 1}) {
    std::string bad = sealed;
    bad[at] ^= 1;
    CHECK_FALSE(AeadOpen(Key('k'), "aad", bad, out.data()));
  }
  CHECK_FALSE(AeadOpen(Key('k'), "aad", sealed.substr(0, kSealOverhead - 1), out.data()));
}

TEST_CASE("keyed chunk ids: not SHA-256, equal for equal bytes under one key", "[crypto]") {
  auto a = RepoCrypto::FromMasterKey(Key('m'), "00112233445566778899aabbccddeeff");
  auto b = RepoCrypto::FromMasterKey(Key('n'), "00112233445566778899aabbccddeeff");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  std::string block = test::RandomBytes(4096, 7);
  CHECK((*a)->ChunkId(block) == (*a)->ChunkId(block));
  CHECK((*a)->ChunkId(block) != Digest::Of(block));
  CHECK((*a)->ChunkId(block) != (*b)->ChunkId(block));
  CHECK(RepoCrypto::None()->ChunkId(block) == Digest::Of(block));
  // An object sealed under one name does not open under another.
  auto sealed = (*a)->SealObject("index/x.idx", "contents");
  REQUIRE(sealed.ok());
  CHECK((*a)->OpenObject("index/x.idx", *sealed, "x").value() == "contents");
  CHECK((*a)->OpenObject("index/y.idx", *sealed, "y").status().code() == Code::kCorrupt);
  CHECK((*b)->OpenObject("index/x.idx", *sealed, "x").status().code() == Code::kCorrupt);
  CHECK((*a)->OpenObject("index/x.idx", "contents", "x").status().code() == Code::kCorrupt);
}

TEST_CASE("a key slot opens with its password only, and only as itself", "[crypto]") {
  std::string repo_id = "00112233445566778899aabbccddeeff";
  auto k = WrapMasterKey(Key('m'), "right", repo_id, kFastKdf, "host", "user", 1);
  REQUIRE(k.ok());
  auto text = EncodeKeyFile(*k);
  auto decoded = DecodeKeyFile(text, k->id, "keys/x");
  REQUIRE(decoded.ok());
  CHECK(UnwrapMasterKey(*decoded, "right").value().bytes() == Key('m').bytes());
  CHECK(UnwrapMasterKey(*decoded, "wrong").status().code() == Code::kDenied);
  // Renamed, or claimed for another repository: does not open.
  auto renamed = DecodeKeyFile(text, std::string(32, 'a'), "keys/a");
  REQUIRE(renamed.ok());
  CHECK(UnwrapMasterKey(*renamed, "right").status().code() == Code::kDenied);
  // Every field is checked before scrypt spends memory on it.
  auto edit = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    auto at = t.find(from);
    REQUIRE(at != std::string::npos);
    t.replace(at, from.size(), to);
    return DecodeKeyFile(t, k->id, "keys/x").status();
  };
  CHECK(edit("\"n\": 1024", "\"n\": 1073741824").code() == Code::kCorrupt);
  CHECK(edit("\"n\": 1024", "\"n\": -1").code() == Code::kCorrupt);
  CHECK(edit("\"p\": 1", "\"p\": 4000000000").code() == Code::kCorrupt);
  CHECK(edit("aes-256-gcm", "rot13").code() == Code::kCorrupt);
  CHECK(edit("\"scrypt\"", "\"md5\"").code() == Code::kCorrupt);
  CHECK(DecodeKeyFile("{", k->id, "keys/x").status().message().find("keys/x") != std::string::npos);
  CHECK_FALSE(WrapMasterKey(Key('m'), "", repo_id, kFastKdf, "h", "u", 1).ok());
}

TEST_CASE("an encrypted repository: passwords, sealed objects, round trip", "[crypto][repository]") {
  test::TempDir dir;
  std::string repo = dir / "repo";
  REQUIRE(InitEncrypted(repo, "pw one").ok());
  // No password, or a wrong one: one clear error, nothing written.
  auto none = Repository::Open(repo, test::DefaultRepoOptions());
  CHECK(none.status().code() == Code::kDenied);
  auto wrong = OpenWith(repo, "pw two");
  CHECK(wrong.status().code() == Code::kDenied);
  CHECK(wrong.status().message().find("wrong password") != std::string::npos);

  // A VM with a marker in a text file and a distinctive file name.
  std::string vm = dir / "vm";
  REQUIRE(MkdirAll(vm).ok());
  std::string marker = "LIVEMOUNT-PLAINTEXT-MARKER-";
  std::string text;
  for (int i = 0; i < 2000; i++) text += marker + std::to_string(i) + "\n";
  test::WriteFile(vm + "/disk-flat.vmdk", test::RandomBytes(64 * 1024, 3) + text);
  test::WriteFile(vm + "/secret-guest-name.vmx", "displayName = \"x\"\n");
  auto r = OpenWith(repo, "pw one");
  REQUIRE(r.ok());
  CHECK((*r)->encrypted());
  BackupOptions bo;
  bo.vm = "vm1";
  bo.vmdir = vm;
  auto b = RunBackup(**r, bo);
  REQUIRE(b.ok());
  // Nothing of the VM's data or file names is readable in any repository file.
  for (const std::string& f : FilesUnder(repo)) {
    std::string bytes = test::ReadAll(f);
    INFO(f);
    CHECK(bytes.find("PLAINTEXT-MARKER") == std::string::npos);
    CHECK(bytes.find("secret-guest-name") == std::string::npos);
    CHECK(bytes.find("displayName") == std::string::npos);
  }
  // The keyed ids: the SHA-256 of a block of the VM is in no index.
  CHECK_FALSE((*r)->index().Contains(Digest::Of(test::RandomBytes(64 * 1024, 3).substr(0, 4096))));

  auto r2 = OpenWith(repo, "pw one");
  REQUIRE(r2.ok());
  auto ref = (*r2)->ResolveSpec("vm1");
  REQUIRE(ref.ok());
  auto restored = RunRestore(**r2, *ref, dir / "out", RestoreOptions{});
  REQUIRE(restored.ok());
  CHECK(test::ReadAll(dir / "out/disk-flat.vmdk") == test::ReadAll(vm + "/disk-flat.vmdk"));
  VerifyOptions vo;
  vo.read_data = true;
  auto v = RunVerify(**r2, vo);
  REQUIRE(v.ok());
  CHECK(v->ok());
}

TEST_CASE("an encrypted repository: a changed byte is named, never served", "[crypto][repository]") {
  test::TempDir dir;
  std::string repo = dir / "repo";
  BackUpOneDisk(dir, 5);
  std::string pack = WritableFileEnding(repo, ".pack");
  test::FlipByte(pack, 16 + 48 + 20);  // inside the first record's ciphertext
  auto r = OpenWith(repo, "pw");
  REQUIRE(r.ok());
  auto ref = (*r)->ResolveSpec("vm1");
  REQUIRE(ref.ok());
  auto restored = RunRestore(**r, *ref, dir / "out", RestoreOptions{});
  REQUIRE_FALSE(restored.ok());
  CHECK(restored.status().code() == Code::kCorrupt);
  CHECK(restored.status().message().find("authentication failed") != std::string::npos);
  VerifyOptions vo;
  vo.read_data = true;
  auto v = RunVerify(**r, vo);
  REQUIRE(v.ok());
  REQUIRE(v->damaged_chunks.size() == 1);
  CHECK(v->damaged_chunks[0].error.find(".pack") != std::string::npos);
  CHECK(v->damaged_chunks[0].users.size() == 1);
}

TEST_CASE("an encrypted repository: a changed index is named, its chunks found in the packs", "[crypto][repository]") {
  test::TempDir dir;
  std::string repo = dir / "repo";
  BackUpOneDisk(dir, 6);
  std::string idx = WritableFileEnding(repo, ".idx");
  test::FlipByte(idx, 30);
  auto r = OpenWith(repo, "pw");
  REQUIRE(r.ok());
  auto ref = (*r)->ResolveSpec("vm1");
  REQUIRE(ref.ok());
  REQUIRE(RunRestore(**r, *ref, dir / "out", RestoreOptions{}).ok());
  CHECK(test::ReadAll(dir / "out/disk-flat.vmdk") == test::ReadAll(dir / "vm/disk-flat.vmdk"));
  auto v = RunVerify(**r, VerifyOptions{});
  REQUIRE(v.ok());
  REQUIRE(v->errors.size() == 1);
  CHECK(v->errors[0].find(".idx: authentication failed") != std::string::npos);
}

TEST_CASE("an encrypted config cannot be changed or downgraded unnoticed", "[crypto][repository]") {
  test::TempDir dir;
  std::string repo = dir / "repo";
  REQUIRE(InitEncrypted(repo, "pw").ok());
  std::string config = test::ReadAll(repo + "/config");
  auto rewrite = [&](const std::string& from, const std::string& to) {
    std::string t = config;
    t.replace(t.find(from), from.size(), to);
    ::chmod((repo + "/config").c_str(), 0600);
    test::WriteFile(repo + "/config", t);
  };
  rewrite("\"chunk_size\": 4096", "\"chunk_size\": 8192");
  auto r = OpenWith(repo, "pw");
  CHECK(r.status().code() == Code::kCorrupt);
  CHECK(r.status().message().find("MAC mismatch") != std::string::npos);
  rewrite("aes-256-gcm", "aes-128-ecb");
  CHECK(OpenWith(repo, "pw").status().code() == Code::kUnsupported);
  rewrite("\"mac\"", "\"mac_was\"");
  CHECK(OpenWith(repo, "pw").status().code() == Code::kCorrupt);
}

TEST_CASE("key slots: add, remove, passwd, the slot in use stays", "[crypto][repository]") {
  test::TempDir dir;
  std::string repo = dir / "repo";
  REQUIRE(InitEncrypted(repo, "first").ok());
  auto r = OpenWith(repo, "first");
  REQUIRE(r.ok());
  std::string first = (*r)->key_id();
  auto second = AddKey(**r, "second", kFastKdf);
  REQUIRE(second.ok());
  CHECK(OpenWith(repo, "second").ok());
  CHECK(OpenWith(repo, "first").ok());
  auto keys = ListKeys(**r);
  REQUIRE(keys.ok());
  REQUIRE(keys->size() == 2);
  CHECK(std::count_if(keys->begin(), keys->end(), [](auto& k) { return k.current; }) == 1);
  CHECK(RemoveKey(**r, first).status().code() == Code::kBusy);
  CHECK(RemoveKey(**r, first.substr(0, 3)).status().code() == Code::kInvalid);
  CHECK(RemoveKey(**r, "ffffffff").status().code() == Code::kNotFound);
  REQUIRE(RemoveKey(**r, second->substr(0, 6)).ok());
  CHECK(OpenWith(repo, "second").status().code() == Code::kDenied);
  auto changed = ChangePassword(**r, "third", kFastKdf);
  REQUIRE(changed.ok());
  CHECK(OpenWith(repo, "first").status().code() == Code::kDenied);
  auto r3 = OpenWith(repo, "third");
  REQUIRE(r3.ok());
  CHECK((*r3)->key_id() == *changed);
  // An unencrypted repository has no keys to manage.
  REQUIRE(Repository::Init(dir / "plain", 4096, Env::Default()).ok());
  auto plain = Repository::Open(dir / "plain", test::DefaultRepoOptions());
  REQUIRE(plain.ok());
  CHECK_FALSE((*plain)->encrypted());
  CHECK(ListKeys(**plain).status().code() == Code::kInvalid);
}

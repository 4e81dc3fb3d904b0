// Chunk identity: the SHA-256 of a chunk's uncompressed bytes (OpenSSL, SHA-NI where present).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

namespace lm {

struct Digest {
  std::array<uint8_t, 32> bytes{};

  static Digest Of(const void* data, size_t n);
  static Digest Of(std::string_view s) { return Of(s.data(), s.size()); }
  // Parses 64 lowercase or uppercase hex characters; false if malformed.
  static bool FromHex(std::string_view hex, Digest* out);
  std::string Hex() const;
  std::string ShortHex() const { return Hex().substr(0, 16); }
  bool IsZero() const;  // the all-zero digest marks an all-zero chunk in a file index

  auto operator<=>(const Digest&) const = default;
  bool operator==(const Digest&) const = default;
};

struct DigestHash {
  size_t operator()(const Digest& d) const {
    size_t h;
    std::memcpy(&h, d.bytes.data(), sizeof h);  // already uniformly distributed
    return h;
  }
};

// Incremental SHA-256 for data that arrives in pieces.
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void Update(const void* data, size_t n);
  Digest Finish();

 private:
  void* ctx_;  // EVP_MD_CTX
};

// True if all n bytes are zero (word at a time).
bool IsAllZero(const void* data, size_t n);

}  // namespace lm

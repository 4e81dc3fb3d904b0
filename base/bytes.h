// Little-endian encoding helpers for the on-disk formats (store/FORMAT.md).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace lm {

inline void PutU8(std::string* s, uint8_t v) { s->push_back(static_cast<char>(v)); }
inline void PutU32(std::string* s, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; i++) b[i] = static_cast<char>(v >> (8 * i));
  s->append(b, 4);
}
inline void PutU64(std::string* s, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; i++) b[i] = static_cast<char>(v >> (8 * i));
  s->append(b, 8);
}
inline void PutBytes(std::string* s, const void* p, size_t n) {
  s->append(static_cast<const char*>(p), n);
}
inline void PutZeros(std::string* s, size_t n) { s->append(n, '\0'); }

inline uint32_t GetU32(const void* p) {
  const auto* b = static_cast<const uint8_t*>(p);
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = v << 8 | b[i];
  return v;
}
inline uint64_t GetU64(const void* p) {
  const auto* b = static_cast<const uint8_t*>(p);
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
  return v;
}
// Big-endian (qcow2's byte order).
inline uint32_t GetBE32(const void* p) {
  const auto* b = static_cast<const uint8_t*>(p);
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v = v << 8 | b[i];
  return v;
}
inline uint64_t GetBE64(const void* p) {
  const auto* b = static_cast<const uint8_t*>(p);
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | b[i];
  return v;
}

// Reads fields in order from a byte buffer; any read past the end sets failed().
class ByteReader {
 public:
  explicit ByteReader(std::string_view d) : d_(d) {}
  bool failed() const { return failed_; }
  size_t pos() const { return pos_; }
  size_t remaining() const { return failed_ ? 0 : d_.size() - pos_; }
  const char* Take(size_t n) {
    if (failed_ || d_.size() - pos_ < n) {
      failed_ = true;
      return nullptr;
    }
    const char* p = d_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint8_t U8() {
    const char* p = Take(1);
    return p ? static_cast<uint8_t>(*p) : 0;
  }
  uint32_t U32() {
    const char* p = Take(4);
    return p ? GetU32(p) : 0;
  }
  uint64_t U64() {
    const char* p = Take(8);
    return p ? GetU64(p) : 0;
  }
  void Copy(void* out, size_t n) {
    const char* p = Take(n);
    if (p) std::memcpy(out, p, n);
  }

 private:
  std::string_view d_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace lm

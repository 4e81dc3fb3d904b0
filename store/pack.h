// Pack files: many compressed chunks in one immutable file of tens of MiB (object-store
// friendly). Each record carries its digest and lengths, and the pack ends with a table
// of its records, so a pack describes itself and indexes can be rebuilt from packs alone.
// Byte layout: store/FORMAT.md, "Pack files".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <memory>

#include "store/backend/backend.h"
#include "store/codec.h"
#include "store/crypto/repo_crypto.h"
#include "store/digest.h"
#include "base/status.h"

namespace lm {

inline constexpr char kPackMagic[8] = {'L', 'M', 'P', 'A', 'C', 'K', '0', '1'};
inline constexpr char kPackEndMagic[8] = {'L', 'M', 'P', 'K', 'E', 'N', 'D', '1'};
inline constexpr uint32_t kRecordMagic = 0x4B434D4C;  // "LMCK" little-endian
inline constexpr size_t kPackHeaderSize = 16;
inline constexpr size_t kRecordHeaderSize = 48;
inline constexpr size_t kPackEntrySize = 56;
inline constexpr size_t kPackFooterSize = 32;

// A pack is named by 16 random bytes, written as 32 hex characters.
using PackId = std::string;

// Where one chunk lives inside one pack.
struct PackEntry {
  Digest digest;
  uint64_t offset = 0;  // of the record header
  uint32_t stored_len = 0;
  uint32_t raw_len = 0;
  Codec codec = Codec::kNone;
};

// A pack id as its 16 bytes (index files, the chunk index on disk), appended to *out; false
// (and 16 zero bytes) unless it is 32 lowercase hex characters. PackIdFromBytes: the inverse.
bool AppendPackIdBytes(const PackId& id, std::string* out);
PackId PackIdFromBytes(const char* raw16);

// "packs/ab/ab12....pack": the pack's object name.
std::string PackRelPath(const PackId& id);
// The inverse: true (and *id) for a well-formed pack object name.
bool ParsePackName(const std::string& name, PackId* id);

// The 48-byte header of a record (also the associated data of its sealed payload).
std::string EncodeRecordHeader(const Digest& digest, Codec codec, uint32_t raw_len, uint32_t stored_len);

// Writes one pack as one object: records are streamed to the backend's writer, then
// Finish() appends the table and commits the object.
class PackWriter {
 public:
  // The pack is invisible until Finish() succeeds.
  static Result<PackWriter> Create(Backend& backend);
  PackWriter(PackWriter&&) = default;
  PackWriter& operator=(PackWriter&&) = default;

  // `stored`: the compressed chunk, sealed already in an encrypted repository.
  Status Append(const Digest& digest, Codec codec, uint32_t raw_len, std::string_view stored);
  uint64_t size() const { return size_; }
  size_t chunk_count() const { return entries_.size(); }
  const PackId& id() const { return id_; }
  // Completes the pack; afterwards entries() is what the index must record.
  Status Finish();
  const std::vector<PackEntry>& entries() const { return entries_; }

 private:
  PackWriter() = default;

  PackId id_;
  std::unique_ptr<ObjectWriter> out_;
  uint64_t size_ = 0;  // bytes appended so far
  std::vector<PackEntry> entries_;
};

// Reads and checks one record: header magic, digest and lengths against `e`, then opens
// the payload (encrypted repository: checks its tag), decompresses into *raw and checks
// the chunk id. Any mismatch is Corrupt naming the pack.
Status ReadChunkRecord(Backend& backend, const RepoCrypto& crypto, const PackId& pack, const PackEntry& e,
                       std::string* raw);
// ReadChunkRecord for a record already read from pack `name` (a coalesced read).
Status DecodePackRecord(const Backend& backend, const RepoCrypto& crypto, const std::string& name,
                        std::string_view record, const PackEntry& e, std::string* raw);
// Decodes a record already in memory (header + stored bytes) into raw bytes, with all checks.
Status DecodeChunkRecord(const RepoCrypto& crypto, std::string_view record, const PackEntry& e,
                         const std::string& where, char* raw_out);

// Checks a record before it is copied unchanged (prune): everything DecodeChunkRecord
// checks when unencrypted; the header and the authentication tag when encrypted.
Status CheckChunkRecord(const RepoCrypto& crypto, std::string_view record, const PackEntry& e,
                        const std::string& where);

// Decodes the table of a whole pack held in memory (tests and fuzzing), with every check.
Result<std::vector<PackEntry>> DecodePackTable(std::string_view pack, const std::string& pack_path);
// Reads the table at the end of a pack, checking footer magic and checksum.
Result<std::vector<PackEntry>> ReadPackTable(Backend& backend, const PackId& pack);

}  // namespace lm

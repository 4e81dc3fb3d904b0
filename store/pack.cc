#include "store/pack.h"

#include <cstring>
#include <xxhash.h>

#include "base/bytes.h"
#include "base/env.h"

namespace lm {

std::string PackRelPath(const PackId& id) {
  return "packs/" + id.substr(0, 2) + "/" + id + ".pack";
}

bool AppendPackIdBytes(const PackId& id, std::string* out) {
  auto nibble = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  std::string raw(16, '\0');
  bool ok = id.size() == 32;
  for (size_t i = 0; ok && i < 16; i++) {
    int hi = nibble(id[2 * i]), lo = nibble(id[2 * i + 1]);
    ok = hi >= 0 && lo >= 0;
    raw[i] = char(ok ? hi << 4 | lo : 0);
  }
  out->append(ok ? raw : std::string(16, '\0'));
  return ok;
}

PackId PackIdFromBytes(const char* raw16) {
  static const char* kHex = "0123456789abcdef";
  PackId id;
  for (int i = 0; i < 16; i++) {
    auto c = static_cast<unsigned char>(raw16[i]);
    id.push_back(kHex[c >> 4]);
    id.push_back(kHex[c & 15]);
  }
  return id;
}

bool ParsePackName(const std::string& name, PackId* id) {
  // packs/<aa>/<32 hex>.pack, <aa> the id's first two characters
  if (name.size() != 6 + 3 + 32 + 5 || name.compare(0, 6, "packs/") != 0 || name[8] != '/' ||
      name.compare(41, 5, ".pack") != 0 || name.compare(6, 2, name, 9, 2) != 0) {
    return false;
  }
  for (size_t i = 9; i < 41; i++) {
    char c = name[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  *id = name.substr(9, 32);
  return true;
}

Result<PackWriter> PackWriter::Create(Backend& backend) {
  PackWriter w;
  w.id_ = RandomHex(16);
  LM_ASSIGN_OR_RETURN(w.out_, backend.NewWriter(PackRelPath(w.id_)));
  std::string header;
  PutBytes(&header, kPackMagic, 8);
  PutU32(&header, 1);
  PutU32(&header, 0);
  LM_RETURN_IF_ERROR(w.out_->Append(header));
  w.size_ = header.size();
  return w;
}

std::string EncodeRecordHeader(const Digest& digest, Codec codec, uint32_t raw_len, uint32_t stored_len) {
  std::string header;
  header.reserve(kRecordHeaderSize);
  PutU32(&header, kRecordMagic);
  PutU8(&header, static_cast<uint8_t>(codec));
  PutZeros(&header, 3);
  PutU32(&header, raw_len);
  PutU32(&header, stored_len);
  PutBytes(&header, digest.bytes.data(), 32);
  return header;
}

Status PackWriter::Append(const Digest& digest, Codec codec, uint32_t raw_len,
                          std::string_view stored) {
  PackEntry e{digest, size_, static_cast<uint32_t>(stored.size()), raw_len, codec};
  LM_RETURN_IF_ERROR(out_->Append(EncodeRecordHeader(digest, codec, raw_len, e.stored_len)));
  LM_RETURN_IF_ERROR(out_->Append(stored));
  size_ += kRecordHeaderSize + stored.size();
  entries_.push_back(e);
  return Status::Ok();
}

Status PackWriter::Finish() {
  uint64_t table_offset = size_;
  std::string table;
  table.reserve(entries_.size() * kPackEntrySize + kPackFooterSize);
  for (const PackEntry& e : entries_) {
    PutBytes(&table, e.digest.bytes.data(), 32);
    PutU64(&table, e.offset);
    PutU32(&table, e.stored_len);
    PutU32(&table, e.raw_len);
    PutU8(&table, static_cast<uint8_t>(e.codec));
    PutZeros(&table, 7);
  }
  uint64_t checksum = XXH3_64bits(table.data(), table.size());
  PutU64(&table, table_offset);
  PutU32(&table, static_cast<uint32_t>(entries_.size()));
  PutU32(&table, 0);
  PutU64(&table, checksum);
  PutBytes(&table, kPackEndMagic, 8);
  LM_RETURN_IF_ERROR(out_->Append(table));
  return out_->Commit();
}

namespace {
// The record's header against the index entry: magic, digest, lengths, codec.
Status CheckRecordHeader(std::string_view record, const PackEntry& e, const std::string& where) {
  if (record.size() != kRecordHeaderSize + e.stored_len) {
    return Status::Corrupt(where + ": record truncated");
  }
  ByteReader r(record);
  uint32_t magic = r.U32();
  uint8_t codec = r.U8();
  r.Take(3);
  uint32_t raw_len = r.U32();
  uint32_t stored_len = r.U32();
  Digest d;
  r.Copy(d.bytes.data(), 32);
  if (magic != kRecordMagic) return Status::Corrupt(where + ": bad record magic");
  if (d != e.digest) return Status::Corrupt(where + ": record holds a different chunk");
  if (raw_len != e.raw_len || stored_len != e.stored_len || codec != static_cast<uint8_t>(e.codec)) {
    return Status::Corrupt(where + ": record header disagrees with the index");
  }
  return Status::Ok();
}
}  // namespace

Status DecodeChunkRecord(const RepoCrypto& crypto, std::string_view record, const PackEntry& e,
                         const std::string& where, char* raw_out) {
  LM_RETURN_IF_ERROR(CheckRecordHeader(record, e, where));
  std::string_view payload = record.substr(kRecordHeaderSize);
  thread_local std::string opened;
  if (crypto.encrypted()) {
    LM_RETURN_IF_ERROR(crypto.OpenPayload(record.substr(0, kRecordHeaderSize), payload, &opened, where));
    payload = opened;
  }
  LM_RETURN_IF_ERROR(DecompressChunk(e.codec, payload, e.raw_len, raw_out, where));
  if (crypto.ChunkId(raw_out, e.raw_len) != e.digest) {
    return Status::Corrupt(where + (crypto.encrypted() ? ": chunk id (HMAC-SHA-256) mismatch" : ": SHA-256 mismatch"));
  }
  return Status::Ok();
}

Status CheckChunkRecord(const RepoCrypto& crypto, std::string_view record, const PackEntry& e,
                        const std::string& where) {
  if (!crypto.encrypted()) {
    thread_local std::string raw;
    raw.resize(e.raw_len);
    return DecodeChunkRecord(crypto, record, e, where, raw.data());
  }
  // The tag authenticates the header and payload as their writer sealed them: enough to
  // copy the record unchanged, without inflating and hashing it.
  LM_RETURN_IF_ERROR(CheckRecordHeader(record, e, where));
  thread_local std::string opened;
  return crypto.OpenPayload(record.substr(0, kRecordHeaderSize), record.substr(kRecordHeaderSize), &opened, where);
}

Status DecodePackRecord(const Backend& backend, const RepoCrypto& crypto, const std::string& name,
                        std::string_view record, const PackEntry& e, std::string* raw) {
  raw->resize(e.raw_len);
  std::string where = backend.Describe(name) + ": chunk " + e.digest.ShortHex() + " at offset " +
                      std::to_string(e.offset);
  return DecodeChunkRecord(crypto, record, e, where, raw->data());
}

Status ReadChunkRecord(Backend& backend, const RepoCrypto& crypto, const PackId& pack, const PackEntry& e,
                       std::string* raw) {
  std::string name = PackRelPath(pack);
  std::string record;
  LM_RETURN_IF_ERROR(backend.ReadRange(name, e.offset, kRecordHeaderSize + e.stored_len, &record));
  return DecodePackRecord(backend, crypto, name, record, e, raw);
}

namespace {

struct PackFooter {
  uint64_t table_offset = 0;
  uint32_t count = 0;
  uint64_t checksum = 0;
};

// Checks the footer of a pack of `size` bytes: magic, and a table that fits the file.
Result<PackFooter> ParsePackFooter(std::string_view footer, uint64_t size, const std::string& pack_path) {
  ByteReader f(footer);
  PackFooter out;
  out.table_offset = f.U64();
  out.count = f.U32();
  f.U32();
  out.checksum = f.U64();
  if (std::memcmp(footer.data() + 24, kPackEndMagic, 8) != 0) {
    return Status::Corrupt(pack_path + ": bad end magic (truncated pack?)");
  }
  uint64_t table_bytes = uint64_t{out.count} * kPackEntrySize;  // < 2^38: no overflow
  if (table_bytes > size - kPackHeaderSize - kPackFooterSize ||
      out.table_offset != size - kPackFooterSize - table_bytes) {
    return Status::Corrupt(pack_path + ": record table does not fit the file size");
  }
  return out;
}

Result<std::vector<PackEntry>> ParsePackTable(std::string_view table, const PackFooter& footer,
                                              const std::string& pack_path) {
  if (XXH3_64bits(table.data(), table.size()) != footer.checksum) {
    return Status::Corrupt(pack_path + ": record table checksum mismatch");
  }
  std::vector<PackEntry> out(footer.count);
  ByteReader r(table);
  for (PackEntry& e : out) {
    r.Copy(e.digest.bytes.data(), 32);
    e.offset = r.U64();
    e.stored_len = r.U32();
    e.raw_len = r.U32();
    e.codec = static_cast<Codec>(r.U8());
    r.Take(7);
    if (e.offset < kPackHeaderSize || e.offset > footer.table_offset ||
        kRecordHeaderSize + uint64_t{e.stored_len} > footer.table_offset - e.offset) {
      return Status::Corrupt(pack_path + ": record table entry points outside the records");
    }
  }
  return out;
}

}  // namespace

Result<std::vector<PackEntry>> DecodePackTable(std::string_view pack, const std::string& pack_path) {
  if (pack.size() < kPackHeaderSize + kPackFooterSize) return Status::Corrupt(pack_path + ": too short to be a pack");
  if (std::memcmp(pack.data(), kPackMagic, 8) != 0) return Status::Corrupt(pack_path + ": bad magic");
  LM_ASSIGN_OR_RETURN(PackFooter footer,
                      ParsePackFooter(pack.substr(pack.size() - kPackFooterSize), pack.size(), pack_path));
  return ParsePackTable(pack.substr(footer.table_offset, uint64_t{footer.count} * kPackEntrySize), footer, pack_path);
}

Result<std::vector<PackEntry>> ReadPackTable(Backend& backend, const PackId& pack) {
  std::string name = PackRelPath(pack);
  std::string pack_path = backend.Describe(name);
  LM_ASSIGN_OR_RETURN(uint64_t size, backend.Size(name));
  if (size < kPackHeaderSize + kPackFooterSize) {
    return Status::Corrupt(pack_path + ": too short to be a pack (" + std::to_string(size) +
                           " bytes)");
  }
  std::string header, footer_bytes, table;
  LM_RETURN_IF_ERROR(backend.ReadRange(name, 0, kPackHeaderSize, &header));
  if (std::memcmp(header.data(), kPackMagic, 8) != 0) return Status::Corrupt(pack_path + ": bad magic");
  LM_RETURN_IF_ERROR(backend.ReadRange(name, size - kPackFooterSize, kPackFooterSize, &footer_bytes));
  LM_ASSIGN_OR_RETURN(PackFooter footer, ParsePackFooter(footer_bytes, size, pack_path));
  LM_RETURN_IF_ERROR(
      backend.ReadRange(name, footer.table_offset, uint64_t{footer.count} * kPackEntrySize, &table));
  return ParsePackTable(table, footer, pack_path);
}

}  // namespace lm

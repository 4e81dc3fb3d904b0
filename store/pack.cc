#include "store/pack.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/bytes.h"

namespace lm {

namespace {
constexpr size_t kWriteBuffer = 4 << 20;
}

std::string PackRelPath(const PackId& id) {
  return "packs/" + id.substr(0, 2) + "/" + id + ".pack";
}

Result<PackWriter> PackWriter::Create(Env* env, const std::string& repo) {
  PackWriter w;
  w.env_ = env;
  w.repo_ = repo;
  w.id_ = RandomHex(16);
  w.final_path_ = JoinPath(repo, PackRelPath(w.id_));
  w.tmp_path_ = w.final_path_ + ".tmp";
  std::string dir = DirName(w.final_path_);
  if (!IsDirectory(dir)) {
    LM_RETURN_IF_ERROR(MkdirAll(dir));
    LM_RETURN_IF_ERROR(env->FsyncDir(DirName(dir)));
  }
  LM_ASSIGN_OR_RETURN(w.fd_, env->Open(w.tmp_path_, O_WRONLY | O_CREAT | O_EXCL, 0444));
  w.buf_.reserve(kWriteBuffer + (1 << 20));
  PutBytes(&w.buf_, kPackMagic, 8);
  PutU32(&w.buf_, 1);
  PutU32(&w.buf_, 0);
  w.size_ = w.buf_.size();
  return w;
}

PackWriter::~PackWriter() {
  if (fd_.valid() && !finished_) {
    fd_.reset();
    ::unlink(tmp_path_.c_str());  // an abandoned pack never becomes visible
  }
}

Status PackWriter::Flush() {
  if (buf_.empty()) return Status::Ok();
  LM_RETURN_IF_ERROR(env_->PWrite(fd_.get(), buf_.data(), buf_.size(), flushed_, tmp_path_));
  // Start writeback now, so the disk works while we fill the rest and fsync is short.
  ::sync_file_range(fd_.get(), static_cast<off_t>(flushed_), static_cast<off_t>(buf_.size()),
                    SYNC_FILE_RANGE_WRITE);
  flushed_ += buf_.size();
  buf_.clear();
  return Status::Ok();
}

Status PackWriter::Append(const Digest& digest, Codec codec, uint32_t raw_len,
                          std::string_view stored) {
  PackEntry e{digest, size_, static_cast<uint32_t>(stored.size()), raw_len, codec};
  PutU32(&buf_, kRecordMagic);
  PutU8(&buf_, static_cast<uint8_t>(codec));
  PutZeros(&buf_, 3);
  PutU32(&buf_, raw_len);
  PutU32(&buf_, e.stored_len);
  PutBytes(&buf_, digest.bytes.data(), 32);
  buf_.append(stored.data(), stored.size());
  size_ += kRecordHeaderSize + stored.size();
  entries_.push_back(e);
  if (buf_.size() >= kWriteBuffer) return Flush();
  return Status::Ok();
}

Status PackWriter::Finish() {
  uint64_t table_offset = size_;
  std::string table;
  table.reserve(entries_.size() * kPackEntrySize);
  for (const PackEntry& e : entries_) {
    PutBytes(&table, e.digest.bytes.data(), 32);
    PutU64(&table, e.offset);
    PutU32(&table, e.stored_len);
    PutU32(&table, e.raw_len);
    PutU8(&table, static_cast<uint8_t>(e.codec));
    PutZeros(&table, 7);
  }
  buf_ += table;
  PutU64(&buf_, table_offset);
  PutU32(&buf_, static_cast<uint32_t>(entries_.size()));
  PutU32(&buf_, 0);
  PutU64(&buf_, XXH3_64bits(table.data(), table.size()));
  PutBytes(&buf_, kPackEndMagic, 8);
  LM_RETURN_IF_ERROR(Flush());
  LM_RETURN_IF_ERROR(env_->Fsync(fd_.get(), tmp_path_));
  fd_.reset();
  LM_RETURN_IF_ERROR(env_->Rename(tmp_path_, final_path_));
  finished_ = true;
  return env_->FsyncDir(DirName(final_path_));
}

Status DecodeChunkRecord(std::string_view record, const PackEntry& e, const std::string& where,
                         char* raw_out) {
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
  LM_RETURN_IF_ERROR(DecompressChunk(e.codec, record.substr(kRecordHeaderSize), raw_len, raw_out,
                                     where));
  if (Digest::Of(raw_out, raw_len) != e.digest) {
    return Status::Corrupt(where + ": SHA-256 mismatch");
  }
  return Status::Ok();
}

Status ReadChunkRecord(Env* env, int fd, const std::string& pack_path, const PackEntry& e,
                       std::string* raw) {
  std::string where = pack_path + ": chunk " + e.digest.ShortHex() + " at offset " +
                      std::to_string(e.offset);
  std::string record(kRecordHeaderSize + e.stored_len, '\0');
  LM_RETURN_IF_ERROR(env->PReadExact(fd, record.data(), record.size(), e.offset, pack_path));
  raw->resize(e.raw_len);
  return DecodeChunkRecord(record, e, where, raw->data());
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

Result<std::vector<PackEntry>> ReadPackTable(Env* env, const std::string& pack_path) {
  LM_ASSIGN_OR_RETURN(UniqueFd fd, env->Open(pack_path, O_RDONLY));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, pack_path);
  uint64_t size = st.st_size;
  if (size < kPackHeaderSize + kPackFooterSize) {
    return Status::Corrupt(pack_path + ": too short to be a pack (" + std::to_string(size) +
                           " bytes)");
  }
  char header[kPackHeaderSize];
  LM_RETURN_IF_ERROR(env->PReadExact(fd.get(), header, sizeof header, 0, pack_path));
  if (std::memcmp(header, kPackMagic, 8) != 0) return Status::Corrupt(pack_path + ": bad magic");
  char footer_bytes[kPackFooterSize];
  LM_RETURN_IF_ERROR(
      env->PReadExact(fd.get(), footer_bytes, sizeof footer_bytes, size - kPackFooterSize, pack_path));
  LM_ASSIGN_OR_RETURN(PackFooter footer,
                      ParsePackFooter(std::string_view(footer_bytes, sizeof footer_bytes), size, pack_path));
  std::string table(uint64_t{footer.count} * kPackEntrySize, '\0');
  LM_RETURN_IF_ERROR(env->PReadExact(fd.get(), table.data(), table.size(), footer.table_offset, pack_path));
  return ParsePackTable(table, footer, pack_path);
}

}  // namespace lm

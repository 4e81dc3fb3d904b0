#include "fs/inode_index.h"

#include "base/state_layout.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "cache/rocks.h"
#include "base/bytes.h"
#include "base/env.h"
#include "base/log.h"

namespace lm {

namespace {

std::string Key(uint64_t ino) {
  std::string k = "i";
  PutU64(&k, ino);
  return k;
}

}  // namespace

Result<std::unique_ptr<InodeIndex>> InodeIndex::Open(const std::string& state_dir,
                                                    rocksdb::Env* rocks_env) {
  std::unique_ptr<InodeIndex> x(new InodeIndex());
  x->dir_ = StateLayout(state_dir).InodesDir();
  rocksdb::Options opts;
  if (rocks_env) opts.env = rocks_env;
  opts.keep_log_file_num = 2;
  opts.write_buffer_size = 8 << 20;
  LM_ASSIGN_OR_RETURN(x->db_, OpenRocks(x->dir_, opts));
  return x;
}

InodeIndex::~InodeIndex() {
  if (db_) (void)db_->Close();
}

std::optional<InodeRecord> InodeIndex::Get(uint64_t ino) const {
  std::string v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), Key(ino), &v);
  if (!s.ok()) {
    if (!s.IsNotFound()) LogWarn(dir_ + ": cannot read inode " + std::to_string(ino) + ": " + s.ToString());
    return std::nullopt;
  }
  if (v.size() < 12) {
    LogWarn(dir_ + ": damaged record for inode " + std::to_string(ino) + "; ignored");
    return std::nullopt;
  }
  InodeRecord r;
  r.parent = GetU64(v.data());
  r.generation = GetU32(v.data() + 8);
  r.name = v.substr(12);
  return r;
}

Status InodeIndex::Put(const std::vector<std::pair<uint64_t, InodeRecord>>& records) {
  if (records.empty()) return Status::Ok();
  rocksdb::WriteBatch batch;
  for (auto& [ino, r] : records) {
    std::string v;
    PutU64(&v, r.parent);
    PutU32(&v, r.generation);
    v += r.name;
    batch.Put(Key(ino), v);
  }
  return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), dir_);
}

}  // namespace lm

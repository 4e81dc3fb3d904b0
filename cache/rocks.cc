#include "cache/rocks.h"

#include <rocksdb/db.h>

#include "base/env.h"

namespace lm {

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return Status::Busy(what + ": in use by another livemount process");
  }
  return Status::IoError(what + ": " + s.ToString());
}

Result<std::unique_ptr<rocksdb::DB>> OpenRocks(const std::string& dir, const rocksdb::Options& options) {
  LM_RETURN_IF_ERROR(MkdirAll(dir));
  rocksdb::Options opts = options;
  opts.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  LM_RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(opts, dir, &db), dir));
  return std::unique_ptr<rocksdb::DB>(db);
}

}  // namespace lm

// RocksDB glue shared by the read-cache index, the overlay store and the inode index:
// one place that turns RocksDB's status into ours and opens a database the same way.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"

namespace rocksdb {
class DB;
class Status;
struct Options;
}  // namespace rocksdb

namespace lm {

// "in use by another livemount process" for lock errors, else IoError naming `what`.
Status FromRocks(const rocksdb::Status& s, const std::string& what);

// Creates `dir` if needed and opens (or creates) the database in it.
Result<std::unique_ptr<rocksdb::DB>> OpenRocks(const std::string& dir, const rocksdb::Options& options);

}  // namespace lm

// Backend: where repository objects live. Every repository operation (init, backup,
// list, verify, restore, the mounts' chunk reads) goes through this one interface, so the
// repository can sit in a local directory today and on an object store (S3, Ceph RGW)
// without any layer above knowing which.
//
// The model is an object store's, which a directory can honour and S3 can too:
//  - An object has a name of '/'-separated components ("packs/ab/ab12….pack"), relative to
//    the repository's location. Components are non-empty, not "." or "..", and never
//    start with '.' (names starting with '.' are the backend's own temporary files).
//  - Objects are immutable: created whole, once (a second create of a name is Exists and
//    leaves the first untouched), visible only when complete and durable, never changed,
//    deleted only by maintenance.
//  - Reads are by byte range; listings are by name prefix and may lag a create on
//    eventually consistent stores (the repository's format tolerates that).
//  - Locks: shared by backups, exclusive for maintenance (a future prune).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/backend/request_stats.h"

namespace lm {

struct ObjectInfo {
  std::string name;
  uint64_t size = 0;
};

// Writes one object as a stream (packs are tens of MiB). Nothing is visible until
// Commit() succeeds; destroying an uncommitted writer abandons the object.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  virtual Status Append(std::string_view data) = 0;
  // Makes the object durable and visible. Exists if the name was taken meanwhile.
  virtual Status Commit() = 0;
};

// Held while it lives; released on destruction (or by the process's death).
class BackendLock {
 public:
  virtual ~BackendLock() = default;
  // Ok while the lock is surely still this process's. A lock that lives in the store (an
  // object store's) and could not be refreshed for long may be taken over by another
  // process: then an error, and the holder must stop before it commits or deletes anything.
  virtual Status Check() const { return Status::Ok(); }
};

enum class LockMode { kShared, kExclusive };

class Backend {
 public:
  virtual ~Backend() = default;

  // Where the repository is, as the user named it (for messages).
  virtual const std::string& location() const = 0;
  // How an object is named in an error message: its path, or its URL.
  virtual std::string Describe(const std::string& name) const = 0;

  // Makes the location ready for a new repository; Exists if it holds anything already.
  virtual Status PrepareNew() = 0;
  // Every complete object whose name starts with `prefix` ("" or a folder ending in '/'),
  // sorted by name. A prefix with nothing under it is an empty list, not NotFound.
  virtual Result<std::vector<ObjectInfo>> List(const std::string& prefix) = 0;
  // Those of List(prefix) whose name sorts after `start_after` (an object store lists only
  // those: one request for what is new when names grow with time).
  virtual Result<std::vector<ObjectInfo>> ListAfter(const std::string& prefix, const std::string& start_after);
  // What interrupted writers left under `prefix` (temporary files, unfinished uploads):
  // invisible to List, reported by verify, deleted by maintenance.
  virtual Result<std::vector<std::string>> ListPartial(const std::string& prefix) = 0;
  // Removes one thing ListPartial named (maintenance, when no writer can be running).
  virtual Status DeletePartial(const std::string& name) = 0;
  // An object's size; NotFound if there is none.
  virtual Result<uint64_t> Size(const std::string& name) = 0;
  // Exactly `length` bytes at `offset` into *out; a range past the end is Corrupt
  // ("truncated"), a missing object NotFound.
  virtual Status ReadRange(const std::string& name, uint64_t offset, size_t length,
                           std::string* out) = 0;
  virtual Result<std::string> ReadAll(const std::string& name) = 0;
  virtual Result<std::unique_ptr<ObjectWriter>> NewWriter(const std::string& name) = 0;
  // Deletes an object; a missing one is fine (deletes are retried after a crash).
  virtual Status Delete(const std::string& name) = 0;
  virtual Result<std::unique_ptr<BackendLock>> Lock(LockMode mode) = 0;
  // What the backend's requests cost so far, if it counts them (object stores do).
  virtual std::optional<RequestStats> Requests() const { return std::nullopt; }

  // Creates a small object in one step (NewWriter, Append, Commit).
  Status Create(const std::string& name, std::string_view data);
};

// True for a name the model above allows (backends refuse any other with Invalid).
bool IsValidObjectName(std::string_view name);

}  // namespace lm

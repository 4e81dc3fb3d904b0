// Repository locks on an object store, which has no locks: each holder creates an object
//
//   locks/<shared|exclusive>-<host>-<pid>-<8 hex>-<seq 8 hex>
//   {"format": "livemount-lock", "mode": "shared", "host": "agent1", "pid": 4242,
//    "pid_start": 81234}
//
// and then lists locks/. A holder that sees a conflicting live lock (an exclusive one for a
// shared request; any other for an exclusive one) deletes its own and backs off: both may
// back off in a race, never both win. A lock is refreshed every `refresh_s` by creating the
// next <seq> and deleting the previous (objects are immutable), and is stale when its
// newest object is older than `stale_s` by the server's clock (LastModified against the
// server's Date, so no client clock matters), or, on the same host, when its process is
// gone. Backups (shared) wait for maintenance to end; maintenance (exclusive) fails at once.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "store/backend/backend.h"
#include "store/backend/s3/s3_client.h"

namespace lm::s3 {

struct LockOptions {
  int64_t stale_s = 300;
  int64_t refresh_s = 60;
  double shared_wait_s = 3600;  // how long a backup waits for maintenance to finish
};

class S3Backend;

// Takes the lock, or Busy naming who holds it.
Result<std::unique_ptr<BackendLock>> AcquireLock(S3Backend& backend, S3Client& client, LockMode mode,
                                                 const LockOptions& options);

}  // namespace lm::s3

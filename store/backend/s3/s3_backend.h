// The repository in an S3 bucket (Ceph RGW, AWS S3, MinIO): an object NAME is the key
// PREFIX/NAME. Each object is written by one PUT with `If-None-Match: *`, so a create never
// replaces (412 is Exists) and an object is visible only whole; the upload's SHA-256 is
// signed, so the store refuses bytes damaged on the way. Reads are ranged GETs. Nothing is
// ever partial (no multipart uploads), so ListPartial is always empty. Locks are objects
// (s3_lock.h). Requests, retries and limits are the S3Client's.
#pragma once

#include <memory>
#include <string>

#include "store/backend/backend.h"
#include "store/backend/s3/s3_client.h"
#include "store/backend/s3/s3_lock.h"
#include "store/backend/s3/s3_xml.h"

namespace lm::s3 {

struct S3BackendOptions {
  HttpOptions http;
  RetryOptions retry;
  LockOptions lock;
};

class S3Backend : public Backend {
 public:
  S3Backend(std::string location, Location where, Credentials credentials, std::string region,
            S3BackendOptions options);

  const std::string& location() const override { return location_; }
  std::string Describe(const std::string& name) const override;
  Status PrepareNew() override;
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override;
  Result<std::vector<ObjectInfo>> ListAfter(const std::string& prefix, const std::string& start_after) override;
  Result<std::vector<std::string>> ListPartial(const std::string& prefix) override;
  Status DeletePartial(const std::string& name) override;
  Result<uint64_t> Size(const std::string& name) override;
  Status ReadRange(const std::string& name, uint64_t offset, size_t length, std::string* out) override;
  Result<std::string> ReadAll(const std::string& name) override;
  Result<std::unique_ptr<ObjectWriter>> NewWriter(const std::string& name) override;
  Status Delete(const std::string& name) override;
  Result<std::unique_ptr<BackendLock>> Lock(LockMode mode) override;
  std::optional<RequestStats> Requests() const override { return client_.Stats(); }

  // The listing with each object's LastModified (server time), for locks; from after
  // `start_after` (a name) if given.
  Result<std::vector<ListedObject>> ListDetailed(const std::string& prefix, const std::string& start_after = "");
  // Creates `name` with `data` unless it exists (Exists then).
  Status Put(const std::string& name, const std::string& data);
  S3Client& client() { return client_; }

 private:
  std::string Key(const std::string& name) const;

  std::string location_;
  S3Client client_;
  S3BackendOptions options_;
};

// Limits an administrator sets for a provider, from the environment (every command and the
// media agent read them): LIVEMOUNT_S3_CONNECTIONS (requests in flight, 1-256, default 16),
// LIVEMOUNT_S3_MAX_RATE (requests per second, 0 for none, the default) and
// LIVEMOUNT_S3_RETRY_FOR (seconds a failing request is retried, default 180) and
// LIVEMOUNT_S3_STALL_TIMEOUT (seconds without a byte before a request is abandoned and
// retried, 1-3600, default 30). A value that is not a number in range is Invalid, naming
// the variable.
Status ApplyEnvironmentTuning(const EnvLookup& getenv_fn, S3BackendOptions* options);

// Opens `location` (s3:...) with credentials, region and tuning from the environment.
Result<std::unique_ptr<Backend>> OpenS3Backend(const std::string& location, S3BackendOptions options = {});

}  // namespace lm::s3

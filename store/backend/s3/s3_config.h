// Where an object-store repository is and who may use it.
//
// Location (restic's syntax): s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX]. Requests use path-
// style addressing (http://HOST:PORT/BUCKET/PREFIX/NAME), which RGW, MinIO and AWS all
// serve; the repository's objects are PREFIX/NAME inside BUCKET.
//
// Credentials, as the AWS tools look for them: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
// (with AWS_SESSION_TOKEN for temporary ones); otherwise the profile AWS_PROFILE
// ("default" if unset) of ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE overrides the
// path). Region: AWS_DEFAULT_REGION, then AWS_REGION, then us-east-1.
#pragma once

#include <functional>
#include <string>

#include "base/status.h"
#include "store/backend/s3/sigv4.h"

namespace lm::s3 {

struct Location {
  std::string endpoint;  // "http://127.0.0.1:7480" (scheme, host, port; no path)
  std::string host;      // Host header: "127.0.0.1:7480"
  std::string bucket;
  std::string prefix;    // "" or "a/b" (no leading or trailing '/')
};

bool IsS3Location(const std::string& location);
Result<Location> ParseLocation(const std::string& location);

// getenv, injectable for tests.
using EnvLookup = std::function<const char*(const char*)>;
Result<Credentials> LoadCredentials(const EnvLookup& getenv_fn);
std::string LoadRegion(const EnvLookup& getenv_fn);
// Reads one profile from an AWS credentials file's text (INI: [name], key = value).
Result<Credentials> ParseCredentialsFile(const std::string& text, const std::string& profile,
                                         const std::string& where);

}  // namespace lm::s3

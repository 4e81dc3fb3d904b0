// The S3 responses the backend reads (XML), parsed with libxml2 without network access or
// entity expansion: a bucket's server is not trusted to send well-behaved documents.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace lm::s3 {

struct ListedObject {
  std::string key;
  uint64_t size = 0;
  int64_t last_modified = 0;  // seconds since the epoch, server time
};

struct ListPage {
  std::vector<ListedObject> objects;
  bool truncated = false;
  std::string next_token;  // NextContinuationToken
};

// A ListObjectsV2 result ("ListBucketResult").
Result<ListPage> ParseListPage(const std::string& xml);

// The <Code> and <Message> of an S3 error document; empty when the body is not one.
struct S3ErrorDoc {
  std::string code, message;
};
S3ErrorDoc ParseError(const std::string& xml);

// "2026-11-26T13:45:12.000Z" (ISO 8601, as in listings) -> epoch seconds; -1 if malformed.
int64_t ParseIsoTime(const std::string& s);
// "Thu, 26 Nov 2026 13:45:12 GMT" (an HTTP Date header) -> epoch seconds; -1 if malformed.
int64_t ParseHttpDate(const std::string& s);

}  // namespace lm::s3

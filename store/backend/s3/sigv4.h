// AWS Signature Version 4 for S3 requests (the first piece of the object-store backend,
// issue 14). Written here on libcrypto: Debian's libs3 signs with the deprecated V2 only,
// and the AWS C++ SDK is not packaged. Checked against AWS's published test suite
// (test/store/sigv4_test.cc).
//
//   canonical request = METHOD \n URI \n QUERY \n HEADERS \n SIGNED-HEADERS \n PAYLOAD-HASH
//   string to sign    = "AWS4-HMAC-SHA256" \n DATE-TIME \n SCOPE \n hex(SHA-256(canonical))
//   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
//
// The URI is the request's path with every byte but the unreserved ones and '/' percent-
// encoded once (S3 does not normalize paths); the query pairs are encoded the same way,
// '/' included, and sorted; header names are lower-cased, values trimmed with inner runs
// of spaces collapsed, and repeated headers joined with ','.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lm::s3 {

struct Credentials {
  std::string access_key, secret_key;
  std::string session_token;  // temporary credentials: sent and signed as X-Amz-Security-Token
};

struct SignedRequest {
  std::string method;  // "GET"
  std::string path;    // decoded: "/bucket/packs/ab/ab12.pack"
  std::vector<std::pair<std::string, std::string>> query;    // decoded, any order
  std::vector<std::pair<std::string, std::string>> headers;  // Host and X-Amz-Date included
  std::string payload_sha256;  // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

// RFC 3986 percent-encoding of everything but A-Z a-z 0-9 - . _ ~ (and '/' if kept).
std::string UriEncode(std::string_view s, bool keep_slash);
std::string CanonicalRequest(const SignedRequest& r);
// "20150830/us-east-1/service/aws4_request" for amz_date "20150830T123600Z".
std::string CredentialScope(const std::string& amz_date, const std::string& region, const std::string& service);
std::string StringToSign(const std::string& amz_date, const std::string& scope, const std::string& canonical);
// The Authorization header's value for `r`, signed at amz_date (YYYYMMDDTHHMMSSZ).
std::string Authorization(const SignedRequest& r, const Credentials& c, const std::string& region,
                          const std::string& service, const std::string& amz_date);

}  // namespace lm::s3

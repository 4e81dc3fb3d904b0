// AWS Signature Version 4 (store/backend/s3/sigv4.h) against AWS's published test suite
// ("Signature Version 4 Test Suite", credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z,
// us-east-1, service "service") and the S3 documentation's GET Object example.
#include <catch2/catch.hpp>

#include "store/backend/s3/sigv4.h"
#include "store/digest.h"

using namespace lm;
using namespace lm::s3;

namespace {

const Credentials kSuite{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const std::string kDate = "20150830T123600Z";

SignedRequest Suite(const std::string& method, const std::string& path,
                    std::vector<std::pair<std::string, std::string>> query = {},
                    std::vector<std::pair<std::string, std::string>> more_headers = {},
                    const std::string& body = "") {
  SignedRequest r;
  r.method = method;
  r.path = path;
  r.query = std::move(query);
  r.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kDate}};
  for (auto& h : more_headers) r.headers.push_back(h);
  r.payload_sha256 = Digest::Of(body).Hex();
  return r;
}

std::string Signature(const SignedRequest& r, const Credentials& c = kSuite) {
  std::string a = Authorization(r, c, "us-east-1", "service", kDate);
  return a.substr(a.find("Signature=") + 10);
}

}  // namespace

TEST_CASE("SigV4: the canonical request of the suite's form POST", "[sigv4]") {
  auto r = Suite("POST", "/", {}, {{"Content-Type", "application/x-www-form-urlencoded"}}, "Param1=value1");
  CHECK(CanonicalRequest(r) ==
        "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  CHECK(Authorization(r, kSuite, "us-east-1", "service", kDate) ==
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}

TEST_CASE("SigV4: the suite's signatures", "[sigv4]") {
  // get-vanilla-query-order-key-case: query pairs sorted by their encoded bytes.
  CHECK(Signature(Suite("GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}})) ==
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
  // get-utf8 and get-vanilla-utf8-query: UTF-8 percent-encoded byte by byte.
  CHECK(Signature(Suite("GET", "/\xe1\x88\xb4")) == "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
  CHECK(Signature(Suite("GET", "/", {{"\xe1\x88\xb4", "bar"}})) ==
        "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
  // get-unreserved: nothing encoded.
  CHECK(Signature(Suite("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")) ==
        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
  // get-space: a space is %20.
  CHECK(Signature(Suite("GET", "/example space/")) == "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741");
  // get-header-value-trim: values trimmed, inner runs of spaces collapsed.
  CHECK(Signature(Suite("GET", "/", {}, {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}})) ==
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
  // post-sts-header-before: a session token is a signed header.
  std::string token =
      "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflf"
      "KD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvl"
      "Rd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3"
      "iSIlTJabIQwj2ICCR/oLxBA==";
  CHECK(Signature(Suite("POST", "/", {}, {{"X-Amz-Security-Token", token}})) ==
        "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
}

TEST_CASE("SigV4: the S3 documentation's GET Object with a Range", "[sigv4]") {
  SignedRequest r;
  r.method = "GET";
  r.path = "/test.txt";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Range", "bytes=0-9"},
               {"x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
               {"x-amz-date", "20130524T000000Z"}};
  r.payload_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  Credentials c{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  CHECK(Authorization(r, c, "us-east-1", "s3", "20130524T000000Z") ==
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST_CASE("SigV4: encoding", "[sigv4]") {
  CHECK(UriEncode("a b/c~d", true) == "a%20b/c~d");
  CHECK(UriEncode("a b/c", false) == "a%20b%2Fc");
  CHECK(UriEncode("\xff+=", false) == "%FF%2B%3D");
  CHECK(CredentialScope("20150830T123600Z", "eu-west-1", "s3") == "20150830/eu-west-1/s3/aws4_request");
}

#include "store/backend/s3/sigv4.h"

#include <algorithm>

#include "base/json_bytes.h"
#include "store/crypto/primitives.h"
#include "store/digest.h"

namespace lm::s3 {

namespace {

std::string Lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// Trims, and collapses every run of spaces and tabs inside into one space.
std::string CanonicalValue(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

// name -> values in order, names sorted.
std::vector<std::pair<std::string, std::string>> CanonicalHeaders(const SignedRequest& r) {
  std::vector<std::pair<std::string, std::string>> h;
  for (auto& [name, value] : r.headers) {
    std::string n = Lower(name), v = CanonicalValue(value);
    auto it = std::find_if(h.begin(), h.end(), [&](auto& p) { return p.first == n; });
    if (it == h.end()) h.push_back({n, v});
    else it->second += "," + v;
  }
  std::sort(h.begin(), h.end());
  return h;
}

std::string Hmac(std::string_view key, std::string_view data) {
  HmacSha256 mac{SecretBytes(std::string(key))};
  Digest d = mac.Of(data.data(), data.size());
  return std::string(reinterpret_cast<const char*>(d.bytes.data()), d.bytes.size());
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');  // ASCII, any locale
    if (alnum || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string CanonicalRequest(const SignedRequest& r) {
  std::vector<std::pair<std::string, std::string>> q;
  for (auto& [k, v] : r.query) q.push_back({UriEncode(k, false), UriEncode(v, false)});
  std::sort(q.begin(), q.end());
  std::string query;
  for (auto& [k, v] : q) query += (query.empty() ? "" : "&") + k + "=" + v;
  std::string headers, signed_headers;
  for (auto& [n, v] : CanonicalHeaders(r)) {
    headers += n + ":" + v + "\n";
    signed_headers += (signed_headers.empty() ? "" : ";") + n;
  }
  return r.method + "\n" + UriEncode(r.path.empty() ? "/" : r.path, true) + "\n" + query + "\n" + headers + "\n" +
         signed_headers + "\n" + r.payload_sha256;
}

std::string CredentialScope(const std::string& amz_date, const std::string& region, const std::string& service) {
  return amz_date.substr(0, 8) + "/" + region + "/" + service + "/aws4_request";
}

std::string StringToSign(const std::string& amz_date, const std::string& scope, const std::string& canonical) {
  return "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + Digest::Of(canonical).Hex();
}

std::string Authorization(const SignedRequest& r, const Credentials& c, const std::string& region,
                          const std::string& service, const std::string& amz_date) {
  std::string scope = CredentialScope(amz_date, region, service);
  std::string key = Hmac("AWS4" + c.secret_key, amz_date.substr(0, 8));
  key = Hmac(key, region);
  key = Hmac(key, service);
  key = Hmac(key, "aws4_request");
  std::string signature = HexEncode(Hmac(key, StringToSign(amz_date, scope, CanonicalRequest(r))));
  std::string signed_headers;
  for (auto& [n, v] : CanonicalHeaders(r)) signed_headers += (signed_headers.empty() ? "" : ";") + n;
  return "AWS4-HMAC-SHA256 Credential=" + c.access_key + "/" + scope + ", SignedHeaders=" + signed_headers +
         ", Signature=" + signature;
}

}  // namespace lm::s3

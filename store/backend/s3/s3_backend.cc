#include "store/backend/s3/s3_backend.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "base/json_bytes.h"

namespace lm::s3 {

namespace {

std::string Md5Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_md5(), nullptr);
  return HexEncode(std::string(reinterpret_cast<char*>(md), n));
}

class S3Writer : public ObjectWriter {
 public:
  S3Writer(S3Backend& backend, std::string name) : backend_(backend), name_(std::move(name)) {}
  Status Append(std::string_view data) override {
    data_.append(data);
    return Status::Ok();
  }
  Status Commit() override {
    Status s = backend_.Put(name_, data_);
    std::string().swap(data_);
    return s;
  }

 private:
  S3Backend& backend_;
  std::string name_;
  std::string data_;
};

}  // namespace

S3Backend::S3Backend(std::string location, Location where, Credentials credentials, std::string region,
                     S3BackendOptions options)
    : location_(std::move(location)),
      client_(std::move(where), std::move(credentials), std::move(region), options.http, options.retry),
      options_(options) {}

std::string S3Backend::Key(const std::string& name) const {
  const std::string& p = client_.location().prefix;
  return p.empty() ? name : p + "/" + name;
}

std::string S3Backend::Describe(const std::string& name) const { return client_.Url(Key(name)); }

Status S3Backend::PrepareNew() {
  LM_ASSIGN_OR_RETURN(auto head, client_.Send({"HEAD", "", {}, {}, ""}));
  if (head.status == 404) {
    // A new repository in a new bucket: create it, as restic does.
    LM_ASSIGN_OR_RETURN(auto made, client_.Send({"PUT", "", {}, {}, ""}));
    if (made.status != 200 && made.status != 409) {
      return client_.ErrorFor(made, location_ + ": create bucket");
    }
  } else if (head.status != 200) {
    return client_.ErrorFor(head, location_);
  }
  LM_ASSIGN_OR_RETURN(auto objects, ListDetailed(""));
  if (!objects.empty()) return Status::Exists(location_ + ": not empty (" + objects[0].key + " …)");
  return Status::Ok();
}

Result<std::vector<ListedObject>> S3Backend::ListDetailed(const std::string& prefix, const std::string& start_after) {
  if (!prefix.empty() && prefix.back() != '/') return Status::Invalid("list: prefix must end in '/': " + prefix);
  const std::string& loc_prefix = client_.location().prefix;
  std::string key_prefix = loc_prefix.empty() ? prefix : loc_prefix + "/" + prefix;
  std::vector<ListedObject> out;
  std::string token;
  for (;;) {
    S3Request r{"GET", "", {{"list-type", "2"}, {"prefix", key_prefix}, {"max-keys", "1000"}}, {}, ""};
    if (!token.empty()) r.query.push_back({"continuation-token", token});
    else if (!start_after.empty()) r.query.push_back({"start-after", loc_prefix.empty() ? start_after : loc_prefix + "/" + start_after});
    LM_ASSIGN_OR_RETURN(auto resp, client_.Send(r));
    if (resp.status != 200) return client_.ErrorFor(resp, location_ + ": list " + (prefix.empty() ? "objects" : prefix));
    auto page = ParseListPage(resp.body);
    if (!page.ok()) return page.status().Context(location_ + ": list " + prefix);
    for (auto& o : page->objects) {
      if (o.key.size() <= key_prefix.size() || o.key.compare(0, key_prefix.size(), key_prefix) != 0) continue;
      std::string name = loc_prefix.empty() ? o.key : o.key.substr(loc_prefix.size() + 1);
      if (!IsValidObjectName(name)) continue;  // not ours (a stray upload, a console folder)
      o.key = std::move(name);
      out.push_back(std::move(o));
    }
    if (!page->truncated) break;
    token = page->next_token;
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.key < b.key; });
  return out;
}

Result<std::vector<ObjectInfo>> S3Backend::List(const std::string& prefix) { return ListAfter(prefix, ""); }

Result<std::vector<ObjectInfo>> S3Backend::ListAfter(const std::string& prefix, const std::string& start_after) {
  LM_ASSIGN_OR_RETURN(auto listed, ListDetailed(prefix, start_after));
  std::vector<ObjectInfo> out;
  out.reserve(listed.size());
  for (auto& o : listed) out.push_back({std::move(o.key), o.size});
  return out;
}

Result<std::vector<std::string>> S3Backend::ListPartial(const std::string&) {
  return std::vector<std::string>{};  // one PUT per object: nothing is ever partial
}

Status S3Backend::DeletePartial(const std::string& name) {
  return Status::NotFound(Describe(name) + ": an object store holds no partial objects");
}

Result<uint64_t> S3Backend::Size(const std::string& name) {
  if (!IsValidObjectName(name)) return Status::Invalid("invalid object name: " + name);
  LM_ASSIGN_OR_RETURN(auto resp, client_.Send({"HEAD", Key(name), {}, {}, ""}));
  if (resp.status != 200) return client_.ErrorFor(resp, Describe(name));
  auto it = resp.headers.find("content-length");
  if (it == resp.headers.end()) return Status::IoError(Describe(name) + ": HEAD gave no Content-Length");
  return uint64_t(std::strtoull(it->second.c_str(), nullptr, 10));
}

Status S3Backend::ReadRange(const std::string& name, uint64_t offset, size_t length, std::string* out) {
  if (!IsValidObjectName(name)) return Status::Invalid("invalid object name: " + name);
  out->clear();
  if (length == 0) return Status::Ok();
  std::string range = "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1);
  LM_ASSIGN_OR_RETURN(auto resp, client_.Send({"GET", Key(name), {}, {{"Range", range}}, ""}));
  std::string what = Describe(name);
  if (resp.status == 206) {
    if (resp.body.size() != length) {
      return Status::Corrupt(what + ": truncated (" + std::to_string(resp.body.size()) + " of " +
                             std::to_string(length) + " bytes at offset " + std::to_string(offset) + ")");
    }
    *out = std::move(resp.body);
    return Status::Ok();
  }
  if (resp.status == 200) {  // a server that ignores ranges sends the whole object
    if (resp.body.size() < offset + length) return Status::Corrupt(what + ": truncated");
    *out = resp.body.substr(offset, length);
    return Status::Ok();
  }
  return client_.ErrorFor(resp, what);
}

Result<std::string> S3Backend::ReadAll(const std::string& name) {
  if (!IsValidObjectName(name)) return Status::Invalid("invalid object name: " + name);
  LM_ASSIGN_OR_RETURN(auto resp, client_.Send({"GET", Key(name), {}, {}, ""}));
  if (resp.status != 200) return client_.ErrorFor(resp, Describe(name));
  if (auto it = resp.headers.find("content-length"); it != resp.headers.end()) {
    if (std::strtoull(it->second.c_str(), nullptr, 10) != resp.body.size()) {
      return Status::Corrupt(Describe(name) + ": truncated in transfer");
    }
  }
  return std::move(resp.body);
}

Status S3Backend::Put(const std::string& name, const std::string& data) {
  if (!IsValidObjectName(name)) return Status::Invalid("invalid object name: " + name);
  LM_ASSIGN_OR_RETURN(auto resp, client_.Send({"PUT", Key(name), {}, {{"If-None-Match", "*"}}, data}));
  if (resp.status == 200) return Status::Ok();
  if (resp.status == 412 && resp.attempts > 1) {
    // A retry after a lost reply finds the object: ours if it holds our bytes.
    LM_ASSIGN_OR_RETURN(auto head, client_.Send({"HEAD", Key(name), {}, {}, ""}));
    auto etag = head.headers.find("etag");
    if (head.status == 200 && etag != head.headers.end() && etag->second == "\"" + Md5Hex(data) + "\"") {
      return Status::Ok();
    }
  }
  return client_.ErrorFor(resp, Describe(name));
}

Result<std::unique_ptr<ObjectWriter>> S3Backend::NewWriter(const std::string& name) {
  if (!IsValidObjectName(name)) return Status::Invalid("invalid object name: " + name);
  return std::unique_ptr<ObjectWriter>(new S3Writer(*this, name));
}

Status S3Backend::Delete(const std::string& name) {
  if (!IsValidObjectName(name)) return Status::Invalid("invalid object name: " + name);
  LM_ASSIGN_OR_RETURN(auto resp, client_.Send({"DELETE", Key(name), {}, {}, ""}));
  if (resp.status == 204 || resp.status == 200 || resp.status == 404) return Status::Ok();
  return client_.ErrorFor(resp, Describe(name));
}

Result<std::unique_ptr<BackendLock>> S3Backend::Lock(LockMode mode) {
  return AcquireLock(*this, client_, mode, options_.lock);
}

Status ApplyEnvironmentTuning(const EnvLookup& getenv_fn, S3BackendOptions* options) {
  auto number = [&](const char* name, double lo, double hi, double* out) -> Status {
    const char* v = getenv_fn(name);
    if (!v || !*v) return Status::Ok();
    char* end = nullptr;
    errno = 0;
    double d = std::strtod(v, &end);
    if (errno != 0 || *end != '\0' || !(d >= lo && d <= hi)) {
      return Status::Invalid(std::string(name) + ": expected a number from " + std::to_string(int64_t(lo)) + " to " +
                             std::to_string(int64_t(hi)) + ", got '" + v + "'");
    }
    *out = d;
    return Status::Ok();
  };
  double connections = options->http.max_in_flight;
  LM_RETURN_IF_ERROR(number("LIVEMOUNT_S3_CONNECTIONS", 1, 256, &connections));
  if (connections != double(unsigned(connections))) {
    return Status::Invalid("LIVEMOUNT_S3_CONNECTIONS: expected a whole number of requests in flight");
  }
  options->http.max_in_flight = unsigned(connections);
  LM_RETURN_IF_ERROR(number("LIVEMOUNT_S3_MAX_RATE", 0, 1e6, &options->http.max_requests_per_second));
  double stall = double(options->http.stall_timeout_s);
  LM_RETURN_IF_ERROR(number("LIVEMOUNT_S3_STALL_TIMEOUT", 1, 3600, &stall));
  if (stall != double(long(stall))) {
    return Status::Invalid("LIVEMOUNT_S3_STALL_TIMEOUT: expected a whole number of seconds");
  }
  options->http.stall_timeout_s = long(stall);
  return number("LIVEMOUNT_S3_RETRY_FOR", 0, 86400, &options->retry.give_up_after_s);
}

Result<std::unique_ptr<Backend>> OpenS3Backend(const std::string& location, S3BackendOptions options) {
  LM_ASSIGN_OR_RETURN(Location where, ParseLocation(location));
  auto env = [](const char* n) { return static_cast<const char*>(std::getenv(n)); };
  auto creds = LoadCredentials(env);
  if (!creds.ok()) return creds.status().Context(location);
  LM_RETURN_IF_ERROR(ApplyEnvironmentTuning(env, &options));
  LM_RETURN_IF_ERROR(options.http.validate());
  LM_RETURN_IF_ERROR(options.retry.validate());
  return std::unique_ptr<Backend>(
      new S3Backend(location, std::move(where), std::move(*creds), LoadRegion(env), options));
}

}  // namespace lm::s3

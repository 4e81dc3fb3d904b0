#include "store/backend/s3/s3_config.h"

#include <fstream>
#include <sstream>

namespace lm::s3 {

namespace {

std::string Trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

bool ValidBucket(const std::string& b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
          c == '-' || c == '.' || c == '_')) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool IsS3Location(const std::string& location) { return location.rfind("s3:", 0) == 0; }

Result<Location> ParseLocation(const std::string& location) {
  auto bad = [&](const std::string& why) {
    return Status::Invalid(location + ": " + why + " (expected s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX])");
  };
  if (!IsS3Location(location)) return bad("not an s3: location");
  std::string url = location.substr(3);
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return bad("no http:// or https://");
  std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return bad("the scheme must be http or https");
  std::string rest = url.substr(scheme_end + 3);
  size_t slash = rest.find('/');
  if (slash == std::string::npos || slash == 0) return bad("no bucket");
  Location l;
  l.host = rest.substr(0, slash);
  for (char c : l.host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']')) {
      return bad("a host name with '" + std::string(1, c) + "'");
    }
  }
  l.endpoint = scheme + "://" + l.host;
  std::string path = rest.substr(slash + 1);
  while (!path.empty() && path.back() == '/') path.pop_back();
  size_t bucket_end = path.find('/');
  l.bucket = path.substr(0, bucket_end);
  if (!ValidBucket(l.bucket)) return bad("'" + l.bucket + "' is not a valid bucket name");
  if (bucket_end != std::string::npos) {
    l.prefix = path.substr(bucket_end + 1);
    if (l.prefix.empty() || l.prefix.find("//") != std::string::npos) return bad("an empty prefix component");
    for (char c : l.prefix) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return bad("a control character in the prefix");
    }
  }
  return l;
}

Result<Credentials> ParseCredentialsFile(const std::string& text, const std::string& profile,
                                         const std::string& where) {
  std::istringstream in(text);
  std::string line, section;
  bool found = false;
  Credentials c;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']') return Status::Invalid(where + ": a section line without ']': " + line);
      section = Trim(line.substr(1, line.size() - 2));
      if (section.rfind("profile ", 0) == 0) section = Trim(section.substr(8));
      if (section == profile) found = true;
      continue;
    }
    if (section != profile) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = Trim(line.substr(0, eq)), value = Trim(line.substr(eq + 1));
    if (key == "aws_access_key_id") c.access_key = value;
    if (key == "aws_secret_access_key") c.secret_key = value;
    if (key == "aws_session_token") c.session_token = value;
  }
  if (!found) return Status::NotFound(where + ": no profile [" + profile + "]");
  if (c.access_key.empty() || c.secret_key.empty()) {
    return Status::Invalid(where + ": profile [" + profile + "] lacks aws_access_key_id or aws_secret_access_key");
  }
  return c;
}

Result<Credentials> LoadCredentials(const EnvLookup& getenv_fn) {
  const char* id = getenv_fn("AWS_ACCESS_KEY_ID");
  const char* secret = getenv_fn("AWS_SECRET_ACCESS_KEY");
  if (id && *id && secret && *secret) {
    Credentials c{id, secret, ""};
    if (const char* token = getenv_fn("AWS_SESSION_TOKEN")) c.session_token = token;
    return c;
  }
  std::string file;
  if (const char* f = getenv_fn("AWS_SHARED_CREDENTIALS_FILE"); f && *f) {
    file = f;
  } else if (const char* home = getenv_fn("HOME"); home && *home) {
    file = std::string(home) + "/.aws/credentials";
  }
  const char* p = getenv_fn("AWS_PROFILE");
  std::string profile = p && *p ? p : "default";
  std::ifstream in(file);
  if (file.empty() || !in) {
    return Status::Invalid("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in " +
                           (file.empty() ? std::string("~/.aws/credentials") : file));
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseCredentialsFile(text.str(), profile, file);
}

std::string LoadRegion(const EnvLookup& getenv_fn) {
  for (const char* name : {"AWS_DEFAULT_REGION", "AWS_REGION"}) {
    if (const char* r = getenv_fn(name); r && *r) return r;
  }
  return "us-east-1";
}

}  // namespace lm::s3

#include "store/backend/s3/s3_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <cstring>
#include <ctime>
#include <memory>

namespace lm::s3 {

namespace {

struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using Doc = std::unique_ptr<xmlDoc, DocFree>;

Doc ParseDoc(const std::string& xml) {
  if (xml.empty() || xml.size() > (64u << 20)) return nullptr;
  // No XML_PARSE_NOENT (no entity expansion), no network, no DTD loading.
  return Doc(xmlReadMemory(xml.data(), int(xml.size()), "s3.xml", nullptr,
                           XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
}

bool Is(const xmlNode* n, const char* name) {
  return n->type == XML_ELEMENT_NODE && std::strcmp(reinterpret_cast<const char*>(n->name), name) == 0;
}

std::string Text(const xmlNode* n) {
  xmlChar* t = xmlNodeGetContent(n);
  std::string s = t ? reinterpret_cast<const char*>(t) : "";
  xmlFree(t);
  return s;
}

const xmlNode* Child(const xmlNode* parent, const char* name) {
  for (const xmlNode* c = parent->children; c; c = c->next)
    if (Is(c, name)) return c;
  return nullptr;
}

std::string ChildText(const xmlNode* parent, const char* name) {
  const xmlNode* c = Child(parent, name);
  return c ? Text(c) : "";
}

}  // namespace

Result<ListPage> ParseListPage(const std::string& xml) {
  Doc doc = ParseDoc(xml);
  const xmlNode* root = doc ? xmlDocGetRootElement(doc.get()) : nullptr;
  if (!root || !Is(root, "ListBucketResult")) {
    return Status::Corrupt("the object store's listing is not a ListBucketResult document");
  }
  ListPage page;
  page.truncated = ChildText(root, "IsTruncated") == "true";
  page.next_token = ChildText(root, "NextContinuationToken");
  for (const xmlNode* c = root->children; c; c = c->next) {
    if (!Is(c, "Contents")) continue;
    ListedObject o;
    o.key = ChildText(c, "Key");
    std::string size = ChildText(c, "Size");
    char* end = nullptr;
    o.size = std::strtoull(size.c_str(), &end, 10);
    if (o.key.empty() || size.empty() || *end != '\0') {
      return Status::Corrupt("the object store's listing has an entry without a key or size");
    }
    o.last_modified = ParseIsoTime(ChildText(c, "LastModified"));
    page.objects.push_back(std::move(o));
  }
  if (page.truncated && page.next_token.empty()) {
    return Status::Corrupt("the object store's listing is truncated but gives no continuation token");
  }
  return page;
}

S3ErrorDoc ParseError(const std::string& xml) {
  S3ErrorDoc e;
  Doc doc = ParseDoc(xml);
  const xmlNode* root = doc ? xmlDocGetRootElement(doc.get()) : nullptr;
  if (!root || !Is(root, "Error")) return e;
  e.code = ChildText(root, "Code");
  e.message = ChildText(root, "Message");
  return e;
}

int64_t ParseIsoTime(const std::string& s) {
  struct tm tm {};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) return -1;
  return int64_t(timegm(&tm));
}

int64_t ParseHttpDate(const std::string& s) {
  struct tm tm {};
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (!end) return -1;
  return int64_t(timegm(&tm));
}

}  // namespace lm::s3

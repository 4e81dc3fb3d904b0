#include "profile/profile.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include <optional>

#include "base/env.h"
#include "base/json_bytes.h"
#include "store/vm_scan.h"

namespace lm {

using nlohmann::json;

uint64_t Profile::Bytes() const {
  uint64_t n = 0;
  for (auto& e : entries)
    for (auto& [off, len] : e.ranges) n += len;
  return n;
}

void Profile::Append(std::vector<ProfileEntry> more) {
  uint64_t next = entries.empty() ? 0 : entries.back().order + 1;
  for (auto& e : more) {
    e.order = next++;
    entries.push_back(std::move(e));
  }
}

std::string EncodeProfile(const Profile& p) {
  json entries = json::array();
  for (const ProfileEntry& e : p.entries) {
    json ranges = json::array();
    for (auto& [off, len] : e.ranges) ranges.push_back({off, len});
    json j = {{"ranges", ranges}, {"source", e.source}, {"order", e.order}};
    SetBytesField(j, "file", e.file);
    if (!e.note.empty()) SetBytesField(j, "note", e.note);
    entries.push_back(std::move(j));
  }
  json j = {{"format", "livemount-profile"}, {"version", 1}, {"created_ns", p.created_ns}, {"entries", entries}};
  SetBytesField(j, "vm", p.vm);
  return j.dump(1) + "\n";
}

namespace {

// Every error names the file, the entry and the field, in words rather than library text.
class ProfileReader {
 public:
  explicit ProfileReader(const std::string& path) : path_(path) {}
  Status Error(const std::string& what) const { return Status::Corrupt(path_ + ": " + where_ + what); }
  void At(size_t entry) { where_ = "entry " + std::to_string(entry) + ": "; }
  Result<uint64_t> U64(const json& j, const char* key, std::optional<uint64_t> fallback = std::nullopt) const {
    auto it = j.find(key);
    if (it == j.end()) {
      if (fallback) return *fallback;
      return Error(std::string("field '") + key + "' is missing");
    }
    if (!it->is_number_unsigned()) return Error(std::string("field '") + key + "' is not a non-negative integer");
    return it->get<uint64_t>();
  }
  Result<std::string> Str(const json& j, const char* key, std::optional<std::string> fallback = std::nullopt) const {
    if (!j.contains(key) && !j.contains(std::string(key) + "_hex")) {
      if (fallback) return *fallback;
      return Error(std::string("field '") + key + "' is missing");
    }
    auto s = GetBytesField(j, key, "");
    if (!s.ok()) return Error(std::string("field '") + key + "' is not a string");
    return *s;
  }

 private:
  std::string path_, where_;
};

}  // namespace

Result<Profile> DecodeProfile(const std::string& text, const std::string& path) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::Corrupt(path + ": not valid JSON");
  if (!j.is_object()) return Status::Corrupt(path + ": not a JSON object");
  ProfileReader r(path);
  if (j.value("format", json()) != "livemount-profile") return Status::Corrupt(path + ": not a livemount profile (field 'format')");
  if (j.value("version", json()) != 1) return Status::Unsupported(path + ": unknown profile version (field 'version')");
  Profile p;
  LM_ASSIGN_OR_RETURN(p.vm, r.Str(j, "vm", ""));
  auto created = j.find("created_ns");
  if (created != j.end() && !created->is_number_integer()) return r.Error("field 'created_ns' is not an integer");
  if (created != j.end()) p.created_ns = created->get<int64_t>();
  auto entries = j.find("entries");
  if (entries == j.end() || !entries->is_array()) return r.Error("field 'entries' is missing or not a list");
  size_t index = 0;
  for (const json& je : *entries) {
    r.At(index++);
    if (!je.is_object()) return r.Error("not an object");
    ProfileEntry e;
    LM_ASSIGN_OR_RETURN(e.file, r.Str(je, "file"));
    if (!IsNormalRelativePath(e.file)) return r.Error("field 'file' is not a relative path in normal form");
    auto ranges = je.find("ranges");
    if (ranges == je.end() || !ranges->is_array()) return r.Error("field 'ranges' is missing or not a list");
    for (const json& range : *ranges) {
      if (!range.is_array() || range.size() != 2 || !range[0].is_number_unsigned() || !range[1].is_number_unsigned()) {
        return r.Error("field 'ranges' holds an item that is not [offset, length] in non-negative integers");
      }
      uint64_t off = range[0].get<uint64_t>(), len = range[1].get<uint64_t>();
      if (len == 0 || off > kMaxProfileOffset || len > kMaxProfileOffset - off) {
        return r.Error("field 'ranges' holds [" + std::to_string(off) + ", " + std::to_string(len) +
                       "]: empty or beyond 2^60");
      }
      e.ranges.push_back({off, len});
    }
    LM_ASSIGN_OR_RETURN(e.source, r.Str(je, "source", "learned"));
    if (e.source != "learned" && e.source != "structural" && e.source != "guest-file") {
      return r.Error("field 'source' is '" + LossyUtf8(e.source) + "', not learned, structural or guest-file");
    }
    LM_ASSIGN_OR_RETURN(e.order, r.U64(je, "order", 0));
    LM_ASSIGN_OR_RETURN(e.note, r.Str(je, "note", ""));
    p.entries.push_back(std::move(e));
  }
  std::stable_sort(p.entries.begin(), p.entries.end(), [](auto& a, auto& b) { return a.order < b.order; });
  return p;
}

Result<Profile> LoadProfile(Env* env, const std::string& path) {
  LM_ASSIGN_OR_RETURN(std::string text, env->ReadFile(path));
  return DecodeProfile(text, path);
}

Status SaveProfile(Env* env, const std::string& path, const Profile& p) {
  LM_RETURN_IF_ERROR(MkdirAll(DirName(path)));
  return env->WriteFileAtomic(path, EncodeProfile(p));
}

// A touch is [file, chunk, ms]; a file name that is not UTF-8 is {"hex": "..."} instead.
std::string EncodeTrace(const Trace& t) {
  json touches = json::array();
  for (auto& x : t.touches) {
    json file = IsValidUtf8(x.file) ? json(x.file) : json({{"hex", HexEncode(x.file)}});
    touches.push_back({file, x.chunk, x.ms});
  }
  json j = {{"format", "livemount-trace"}, {"version", 1},        {"vm", t.vm},
            {"backup", t.backup},          {"started_ns", t.started_ns},
            {"chunk_size", t.chunk_size},  {"touches", touches}};
  return j.dump() + "\n";
}

Result<Trace> DecodeTrace(const std::string& text, const std::string& path) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corrupt(path + ": not valid JSON");
  try {
    if (j.at("format") != "livemount-trace") return Status::Corrupt(path + ": not a livemount trace");
    Trace t;
    t.vm = j.at("vm");
    t.backup = j.at("backup");
    t.started_ns = j.value("started_ns", int64_t{0});
    t.chunk_size = j.at("chunk_size");
    for (const json& x : j.at("touches")) {
      if (!x.is_array() || x.size() != 3) return Status::Corrupt(path + ": a touch is not [file, chunk, ms]");
      TraceTouch touch{"", x.at(1).get<uint64_t>(), x.at(2).get<uint64_t>()};
      if (x[0].is_object()) {
        if (!HexDecode(x[0].at("hex").get<std::string>(), &touch.file)) return Status::Corrupt(path + ": bad file name");
      } else {
        touch.file = x[0].get<std::string>();
      }
      if (touch.chunk > (uint64_t{1} << 44)) return Status::Corrupt(path + ": chunk number out of range");
      t.touches.push_back(std::move(touch));
    }
    if (t.chunk_size < 4096 || t.chunk_size > (64u << 20)) return Status::Corrupt(path + ": invalid chunk size");
    return t;
  } catch (const json::exception& e) {
    return Status::Corrupt(path + ": a field has the wrong type");
  }
}

Profile LearnProfile(const std::string& vm, const std::vector<Trace>& traces) {
  // Earliest relative time of each (file, chunk) across boots; chunk size per file.
  std::map<std::pair<std::string, uint64_t>, uint64_t> first;
  std::map<std::string, uint32_t> chunk_size;
  for (const Trace& t : traces) {
    for (const TraceTouch& x : t.touches) {
      auto key = std::make_pair(x.file, x.chunk);
      auto it = first.find(key);
      if (it == first.end() || x.ms < it->second) first[key] = x.ms;
      chunk_size[x.file] = t.chunk_size;
    }
  }
  std::vector<std::pair<uint64_t, std::pair<std::string, uint64_t>>> order;
  for (auto& [key, ms] : first) order.push_back({ms, key});
  std::stable_sort(order.begin(), order.end(),
                   [](auto& a, auto& b) { return a.first < b.first; });
  Profile p;
  p.vm = vm;
  uint64_t n = 0;
  for (auto& [ms, key] : order) {
    uint64_t cs = chunk_size[key.first];
    // Coalesce with the previous entry when it is the same file and the adjacent chunk.
    if (!p.entries.empty() && p.entries.back().file == key.first) {
      auto& last = p.entries.back().ranges.back();
      if (last.first + last.second == key.second * cs) {
        last.second += cs;
        continue;
      }
    }
    p.entries.push_back({key.first, {{key.second * cs, cs}}, "learned", n++, ""});
  }
  return p;
}

}  // namespace lm

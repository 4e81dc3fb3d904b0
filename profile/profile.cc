#include "profile/profile.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "store/env.h"

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
    json j = {{"file", e.file}, {"ranges", ranges}, {"source", e.source}, {"order", e.order}};
    if (!e.note.empty()) j["note"] = e.note;
    entries.push_back(std::move(j));
  }
  json j = {{"format", "livemount-profile"}, {"version", 1}, {"vm", p.vm},
            {"created_ns", p.created_ns}, {"entries", entries}};
  return j.dump(1) + "\n";
}

Result<Profile> DecodeProfile(const std::string& text, const std::string& path) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corrupt(path + ": not valid JSON");
  try {
    if (j.at("format") != "livemount-profile") return Status::Corrupt(path + ": not a livemount profile");
    if (j.at("version") != 1) return Status::Unsupported(path + ": unknown profile version");
    Profile p;
    p.vm = j.value("vm", "");
    p.created_ns = j.value("created_ns", int64_t{0});
    for (const json& je : j.at("entries")) {
      ProfileEntry e;
      e.file = je.at("file");
      if (e.file.empty() || e.file[0] == '/' || e.file.find("..") != std::string::npos) {
        return Status::Corrupt(path + ": unsafe file name '" + e.file + "'");
      }
      for (const json& r : je.at("ranges")) {
        if (!r.is_array() || r.size() != 2) return Status::Corrupt(path + ": a range is not [offset, length]");
        e.ranges.push_back({r[0].get<uint64_t>(), r[1].get<uint64_t>()});
      }
      e.source = je.value("source", "learned");
      if (e.source != "learned" && e.source != "structural" && e.source != "guest-file") {
        return Status::Corrupt(path + ": unknown source '" + e.source + "'");
      }
      e.order = je.value("order", uint64_t{0});
      e.note = je.value("note", "");
      p.entries.push_back(std::move(e));
    }
    std::stable_sort(p.entries.begin(), p.entries.end(),
                     [](auto& a, auto& b) { return a.order < b.order; });
    return p;
  } catch (const json::exception& e) {
    return Status::Corrupt(path + ": " + e.what());
  }
}

Result<Profile> LoadProfile(const std::string& path) {
  LM_ASSIGN_OR_RETURN(std::string text, Env::Default()->ReadFile(path));
  return DecodeProfile(text, path);
}

Status SaveProfile(const std::string& path, const Profile& p) {
  LM_RETURN_IF_ERROR(MkdirAll(DirName(path)));
  return Env::Default()->WriteFileAtomic(path, EncodeProfile(p));
}

std::string EncodeTrace(const Trace& t) {
  json touches = json::array();
  for (auto& x : t.touches) touches.push_back({x.file, x.chunk, x.ms});
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
    for (const json& x : j.at("touches")) t.touches.push_back({x.at(0), x.at(1), x.at(2)});
    if (t.chunk_size == 0) return Status::Corrupt(path + ": chunk size 0");
    return t;
  } catch (const json::exception& e) {
    return Status::Corrupt(path + ": " + e.what());
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

#include "store/manifest.h"

#include <nlohmann/json.hpp>

#include <ctime>

#include <unordered_map>
#include <unordered_set>

#include "base/bytes.h"
#include "base/json_bytes.h"
#include "store/vm_scan.h"

namespace lm {

using nlohmann::json;

static const char* TypeName(FileType t) {
  switch (t) {
    case FileType::kFile: return "file";
    case FileType::kDir: return "dir";
    case FileType::kSymlink: return "symlink";
  }
  return "?";
}

std::string EncodeManifest(const BackupManifest& m) {
  json files = json::array();
  for (const FileEntry& f : m.files) {
    json j = {{"type", TypeName(f.type)}, {"mode", f.mode},
              {"uid", f.uid},     {"gid", f.gid},             {"mtime_ns", f.mtime_ns},
              {"atime_ns", f.atime_ns}, {"size", f.size}};
    SetBytesField(j, "path", f.path);
    if (f.type == FileType::kSymlink) SetBytesField(j, "target", f.target);
    if (f.type == FileType::kFile) j["fidx"] = f.fidx;
    if (f.changed) j["changed"] = true;
    if (!f.xattrs.empty()) {
      json x = json::array();
      for (auto& [name, value] : f.xattrs) x.push_back({HexEncode(name), HexEncode(value)});
      j["xattrs"] = std::move(x);
    }
    files.push_back(std::move(j));
  }
  json j = {{"format", "livemount-backup"},
            {"version", 1},
            {"vm", m.vm},
            {"id", m.id},
            {"time_ns", m.time_ns},
            {"host", LossyUtf8(m.host)},
            {"chunk_size", m.chunk_size},
            {"summary",
             {{"logical_bytes", m.logical_bytes},
              {"new_raw_bytes", m.new_raw_bytes},
              {"stored_bytes", m.stored_bytes},
              {"chunks", m.chunks},
              {"zero_chunks", m.zero_chunks},
              {"new_chunks", m.new_chunks},
              {"seconds", m.seconds}}},
            {"has_profile", m.has_profile},
            {"files", std::move(files)}};
  SetBytesField(j, "source", m.source);
  return j.dump(1) + "\n";
}

namespace {

bool IsFidxName(const std::string& s) {
  if (s.size() < 12 || s.compare(0, 6, "files/") != 0 || s.compare(s.size() - 5, 5, ".fidx") != 0) return false;
  for (size_t i = 6; i + 5 < s.size(); i++)
    if (!isdigit(static_cast<unsigned char>(s[i]))) return false;
  return s.size() - 11 <= 12;
}

// A manifest restore and the mount can trust: every path normal and unique, every entry's
// parent a directory listed before it (so nothing lies below a symlink or a file).
Status CheckFileList(const std::vector<FileEntry>& files, const std::string& path) {
  std::unordered_map<std::string, FileType> seen;
  std::unordered_set<std::string> fidx;
  for (const FileEntry& f : files) {
    std::string shown = "'" + LossyUtf8(f.path) + "'";
    if (!IsNormalRelativePath(f.path)) return Status::Corrupt(path + ": path " + shown + " is not in normal form");
    if (!seen.emplace(f.path, f.type).second) return Status::Corrupt(path + ": path " + shown + " is listed twice");
    auto slash = f.path.rfind('/');
    if (slash != std::string::npos) {
      auto parent = seen.find(f.path.substr(0, slash));
      if (parent == seen.end() || parent->second != FileType::kDir) {
        return Status::Corrupt(path + ": path " + shown + " is not below a directory listed before it" +
                               (parent != seen.end() && parent->second == FileType::kSymlink ? " (it is below a symlink)" : ""));
      }
    }
    if (f.type == FileType::kFile) {
      if (!IsFidxName(f.fidx)) return Status::Corrupt(path + ": " + shown + " has a bad chunk list name");
      if (!fidx.insert(f.fidx).second) return Status::Corrupt(path + ": " + shown + " shares its chunk list");
    }
    if (f.type == FileType::kSymlink && (f.target.empty() || f.target.find('\0') != std::string::npos)) {
      return Status::Corrupt(path + ": symlink " + shown + " has an empty or invalid target");
    }
    if (f.mode > 07777) return Status::Corrupt(path + ": " + shown + " has an invalid mode");
  }
  return Status::Ok();
}

}  // namespace

Result<BackupManifest> DecodeManifest(const std::string& text, const std::string& path) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corrupt(path + ": not valid JSON");
  try {
    if (j.at("format") != "livemount-backup") return Status::Corrupt(path + ": wrong format tag");
    if (j.at("version") != 1) return Status::Unsupported(path + ": unknown backup version");
    BackupManifest m;
    m.vm = j.at("vm");
    m.id = j.at("id");
    m.time_ns = j.at("time_ns");
    if (j.contains("source")) {
      LM_ASSIGN_OR_RETURN(m.source, GetBytesField(j, "source", path));
    }
    m.host = j.value("host", "");
    m.chunk_size = j.at("chunk_size");
    const json& s = j.at("summary");
    m.logical_bytes = s.at("logical_bytes");
    m.new_raw_bytes = s.at("new_raw_bytes");
    m.stored_bytes = s.at("stored_bytes");
    m.chunks = s.value("chunks", 0ull);
    m.zero_chunks = s.value("zero_chunks", 0ull);
    m.new_chunks = s.value("new_chunks", 0ull);
    m.seconds = s.value("seconds", 0.0);
    m.has_profile = j.value("has_profile", false);
    for (const json& fj : j.at("files")) {
      FileEntry f;
      if (!fj.is_object()) return Status::Corrupt(path + ": a file entry is not an object");
      LM_ASSIGN_OR_RETURN(f.path, GetBytesField(fj, "path", path));
      std::string type = fj.at("type");
      if (type == "file") f.type = FileType::kFile;
      else if (type == "dir") f.type = FileType::kDir;
      else if (type == "symlink") f.type = FileType::kSymlink;
      else return Status::Corrupt(path + ": unknown file type '" + type + "'");
      f.mode = fj.at("mode");
      f.uid = fj.value("uid", 0u);
      f.gid = fj.value("gid", 0u);
      f.mtime_ns = fj.at("mtime_ns");
      f.atime_ns = fj.value("atime_ns", f.mtime_ns);
      f.size = fj.at("size");
      if (f.type == FileType::kSymlink) {
        LM_ASSIGN_OR_RETURN(f.target, GetBytesField(fj, "target", path));
      }
      if (f.type == FileType::kFile) f.fidx = fj.at("fidx");
      f.changed = fj.value("changed", false);
      if (auto x = fj.find("xattrs"); x != fj.end()) {
        for (const json& pair : *x) {
          std::string name, value;
          if (!pair.is_array() || pair.size() != 2 || !HexDecode(pair[0].get<std::string>(), &name) ||
              !HexDecode(pair[1].get<std::string>(), &value) || name.empty() || name.size() > 255 ||
              value.size() > 65536) {
            return Status::Corrupt(path + ": malformed extended attribute of '" + LossyUtf8(f.path) + "'");
          }
          f.xattrs[name] = value;
        }
      }
      m.files.push_back(std::move(f));
    }
    if (m.chunk_size < 4096 || m.chunk_size > (64u << 20) || (m.chunk_size & (m.chunk_size - 1))) {
      return Status::Corrupt(path + ": invalid chunk size " + std::to_string(m.chunk_size));
    }
    if (!IsValidName(m.vm) || !IsValidBackupId(m.id)) return Status::Corrupt(path + ": invalid VM name or backup id");
    LM_RETURN_IF_ERROR(CheckFileList(m.files, path));
    return m;
  } catch (const json::exception& e) {
    return Status::Corrupt(path + ": " + e.what());
  }
}

std::string EncodeFidx(const FileChunks& f) {
  std::string entries;
  entries.reserve(f.digests.size() * 32);
  for (const Digest& d : f.digests) PutBytes(&entries, d.bytes.data(), 32);
  std::string s;
  s.reserve(kFidxHeaderSize + entries.size());
  PutBytes(&s, kFidxMagic, 8);
  PutU32(&s, 1);
  PutU32(&s, f.chunk_size);
  PutU64(&s, f.file_size);
  PutU64(&s, f.digests.size());
  Digest sum = Digest::Of(entries);
  PutBytes(&s, sum.bytes.data(), 32);
  s += entries;
  return s;
}

Result<FileChunks> DecodeFidx(std::string_view data, const std::string& path) {
  if (data.size() < kFidxHeaderSize) return Status::Corrupt(path + ": truncated header");
  if (std::memcmp(data.data(), kFidxMagic, 8) != 0) return Status::Corrupt(path + ": bad magic");
  ByteReader r(data);
  r.Take(8);
  uint32_t version = r.U32();
  if (version != 1) return Status::Unsupported(path + ": fidx version " + std::to_string(version));
  FileChunks f;
  f.chunk_size = r.U32();
  f.file_size = r.U64();
  uint64_t n = r.U64();
  Digest want;
  r.Copy(want.bytes.data(), 32);
  if (f.chunk_size == 0) return Status::Corrupt(path + ": chunk size 0");
  if (f.file_size > (uint64_t{1} << 60)) return Status::Corrupt(path + ": file size out of range");
  uint64_t expect = f.file_size / f.chunk_size + (f.file_size % f.chunk_size != 0);
  if (n != expect) return Status::Corrupt(path + ": chunk count does not match file size");
  if (r.remaining() != n * 32) return Status::Corrupt(path + ": truncated digest list");
  std::string_view entries = data.substr(kFidxHeaderSize);
  if (Digest::Of(entries) != want) return Status::Corrupt(path + ": checksum mismatch");
  f.digests.resize(n);
  for (uint64_t i = 0; i < n; i++) std::memcpy(f.digests[i].bytes.data(), entries.data() + 32 * i, 32);
  return f;
}

std::string BackupIdForTime(int64_t time_ns) {
  time_t t = static_cast<time_t>(time_ns / 1000000000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

int64_t BackupIdTime(const std::string& id) {
  struct tm tm {};
  const char* end = strptime(id.c_str(), "%Y%m%dT%H%M%SZ", &tm);
  if (!end || (*end != '\0' && *end != '-')) return 0;
  return timegm(&tm);
}


}  // namespace lm

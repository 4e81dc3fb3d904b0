#include "fs/overlay_store.h"

#include "base/json_bytes.h"
#include "base/state_layout.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "cache/rocks.h"

namespace lm {

using nlohmann::json;

namespace {

std::string Prefix(const BackupRef& b) { return "e/" + b.vm + "/" + b.id + "/"; }

std::string Encode(const OverlayEntry& e) {
  if (e.whiteout) return R"({"w":1})";
  json j = {{"t", std::string(1, e.type)}, {"m", e.mode}, {"u", e.uid}, {"g", e.gid},
            {"at", e.atime_ns}, {"mt", e.mtime_ns}, {"ct", e.ctime_ns}, {"i", e.ino}};
  if (e.base_index >= 0) {
    j["b"] = e.base_index;
    j["bs"] = e.base_size;
  } else if (!e.view.empty()) {
    SetBytesField(j, "v", e.view);  // view names are file names: bytes
    j["bs"] = e.base_size;
  }
  if (!e.fid.empty()) j["f"] = e.fid;
  if (!e.target.empty()) SetBytesField(j, "l", e.target);  // symlink targets are bytes
  if (e.opaque) j["o"] = 1;
  if (e.rdev) j["r"] = e.rdev;
  if (e.hardlink) j["k"] = 1;
  if (!e.xattrs.empty()) {
    json x = json::object();
    for (auto& [name, value] : e.xattrs) x[HexEncode(name)] = HexEncode(value);
    j["x"] = std::move(x);
  }
  return j.dump();
}

bool Decode(const std::string& s, OverlayEntry* e) {
  json j = json::parse(s, nullptr, false);
  if (!j.is_object()) return false;
  try {
    if (j.value("w", 0)) {
      e->whiteout = true;
      return true;
    }
    e->type = j.at("t").get<std::string>().at(0);
    e->mode = j.at("m");
    e->uid = j.at("u");
    e->gid = j.at("g");
    e->atime_ns = j.at("at");
    e->mtime_ns = j.at("mt");
    e->ctime_ns = j.at("ct");
    e->ino = j.at("i");
    e->base_index = j.value("b", -1);
    e->base_size = j.value("bs", uint64_t{0});
    if (j.contains("v")) {
      auto view = GetBytesField(j, "v", "");
      if (!view.ok()) return false;
      e->view = *view;
    }
    e->fid = j.value("f", "");
    if (j.contains("l")) {
      auto target = GetBytesField(j, "l", "");
      if (!target.ok()) return false;
      e->target = *target;
    }
    e->opaque = j.value("o", 0) != 0;
    e->rdev = j.value("r", uint64_t{0});
    e->hardlink = j.value("k", 0) != 0;
    if (auto x = j.find("x"); x != j.end()) {
      if (!x->is_object()) return false;
      for (auto& [hex_name, hex_value] : x->items()) {
        std::string name, value;
        if (!hex_value.is_string() || !HexDecode(hex_name, &name) || !HexDecode(hex_value.get<std::string>(), &value)) {
          return false;
        }
        e->xattrs[name] = value;
      }
    }
    return std::string("fdlpscb").find(e->type) != std::string::npos;
  } catch (const json::exception&) {
    return false;
  }
}

uint64_t AllocatedBytes(const std::string& dir) {
  uint64_t total = 0;
  auto names = ListDir(dir);
  if (!names.ok()) return 0;
  for (auto& n : *names) {
    struct stat st;
    if (::stat(JoinPath(dir, n).c_str(), &st) == 0) total += uint64_t(st.st_blocks) * 512;
  }
  return total;
}

}  // namespace

Result<std::unique_ptr<OverlayStore>> OverlayStore::Open(const std::string& state_dir,
                                                        rocksdb::Env* rocks_env) {
  std::unique_ptr<OverlayStore> s(new OverlayStore());
  s->state_dir_ = state_dir;
  rocksdb::Options opts;
  if (rocks_env) opts.env = rocks_env;
  opts.keep_log_file_num = 2;
  StateLayout layout(state_dir);
  LM_RETURN_IF_ERROR(layout.Migrate());  // the metadata used to sit among the VM folders
  LM_ASSIGN_OR_RETURN(s->db_, OpenRocks(layout.OverlayMetaDir(), opts));
  return s;
}

OverlayStore::~OverlayStore() {
  if (db_) (void)db_->Close();
}

std::string OverlayStore::DataDir(const BackupRef& b) const {
  // The ref came from the repository, whose names are validated (IsValidName).
  return JoinPath(StateLayout(state_dir_).OverlaysDir(), b.vm + "/" + b.id);
}

Result<std::vector<std::pair<std::string, OverlayEntry>>> OverlayStore::Entries(const BackupRef& b) {
  std::vector<std::pair<std::string, OverlayEntry>> out;
  std::string prefix = Prefix(b);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    OverlayEntry e;
    std::string path = it->key().ToString().substr(prefix.size());
    if (!Decode(it->value().ToString(), &e)) {
      return Status::Corrupt(state_dir_ + "/overlays/meta: damaged entry for " + b.Name() + ":" + path);
    }
    out.push_back({path, e});
  }
  LM_RETURN_IF_ERROR(FromRocks(it->status(), "overlay entries of " + b.Name()));
  return out;
}

Status OverlayStore::Apply(const BackupRef& b,
                           const std::vector<std::pair<std::string, std::optional<OverlayEntry>>>& changes,
                           bool sync) {
  rocksdb::WriteBatch batch;
  std::string prefix = Prefix(b);
  for (auto& [path, e] : changes) {
    if (e) batch.Put(prefix + path, Encode(*e));
    else batch.Delete(prefix + path);
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(db_->Write(wo, &batch), "overlay of " + b.Name());
}

Status OverlayStore::Discard(const BackupRef& b) {
  std::string prefix = Prefix(b);
  std::string end = prefix;
  end.back() = '/' + 1;
  rocksdb::WriteOptions wo;
  wo.sync = true;
  LM_RETURN_IF_ERROR(FromRocks(db_->DeleteRange(wo, db_->DefaultColumnFamily(), prefix, end),
                               "discard " + b.Name()));
  return RemoveTree(DataDir(b));
}

Result<std::vector<OverlayInfo>> OverlayStore::Scan(const std::string& state_dir) {
  std::vector<OverlayInfo> out;
  std::string base = StateLayout(state_dir).OverlaysDir();
  if (!IsDirectory(base)) return out;
  LM_ASSIGN_OR_RETURN(auto vms, ListDir(base));
  for (auto& vm : vms) {
    // Not a VM name: the pre-0.2 metadata ("meta", moved at the next mount) or stray files.
    if (!IsValidName(vm) || PathExists(JoinPath(base, vm + "/CURRENT"))) continue;
    auto ids = ListDir(JoinPath(base, vm));
    if (!ids.ok()) continue;
    for (auto& id : *ids) {
      if (!IsValidBackupId(id)) continue;
      std::string dir = JoinPath(base, vm + "/" + id);
      auto files = ListDir(dir);
      OverlayInfo info{{vm, id}, files.ok() ? files->size() / 2 : 0, AllocatedBytes(dir)};
      out.push_back(info);
    }
  }
  return out;
}

}  // namespace lm

#include "agent/control_protocol.h"

#include <limits>

#include "base/json_bytes.h"

namespace lm::control {

using nlohmann::json;

namespace {

// Reads fields strictly: present, of the right JSON type, in range. The first problem is
// kept and named ("field 'cache.hits' is missing or not an unsigned integer").
class FieldReader {
 public:
  FieldReader(const json* j, std::string prefix = "") : j_(j), prefix_(std::move(prefix)) {}

  void Read(const char* key, std::string* out) {
    if (auto* v = Find(key, "a string", [](const json& x) { return x.is_string(); })) *out = v->get<std::string>();
  }
  void Read(const char* key, bool* out) {
    if (auto* v = Find(key, "a boolean", [](const json& x) { return x.is_boolean(); })) *out = v->get<bool>();
  }
  void Read(const char* key, uint64_t* out) {
    if (auto* v = Find(key, "an unsigned integer", [](const json& x) { return x.is_number_unsigned(); })) {
      *out = v->get<uint64_t>();
    }
  }
  void Read(const char* key, uint16_t* out) {
    if (auto* v = Find(key, "a port number", [](const json& x) {
          return x.is_number_unsigned() && x.get<uint64_t>() <= std::numeric_limits<uint16_t>::max();
        })) {
      *out = v->get<uint16_t>();
    }
  }
  void Read(const char* key, int64_t* out) {
    if (auto* v = Find(key, "an integer", [](const json& x) { return x.is_number_integer(); })) *out = v->get<int64_t>();
  }
  void Read(const char* key, double* out) {
    if (auto* v = Find(key, "a number", [](const json& x) { return x.is_number(); })) *out = v->get<double>();
  }
  void Read(const char* key, std::vector<std::string>* out) {
    auto* v = Find(key, "a list of strings", [](const json& x) {
      if (!x.is_array()) return false;
      for (auto& e : x)
        if (!e.is_string()) return false;
      return true;
    });
    if (v) *out = v->get<std::vector<std::string>>();
  }
  // A nested object; its problems are reported through this reader.
  FieldReader Object(const char* key) {
    const json* v = Find(key, "an object", [](const json& x) { return x.is_object(); });
    FieldReader sub(v, prefix_ + key + ".");
    sub.parent_ = this;
    return sub;
  }
  const json* Raw(const char* key) const { return j_ && j_->is_object() && j_->contains(key) ? &(*j_)[key] : nullptr; }
  void Fail(const std::string& what) {
    if (parent_) return parent_->Fail(what);
    if (error_.empty()) error_ = what;
  }
  const std::string& error() const { return error_; }

 private:
  template <typename Pred>
  const json* Find(const char* key, const char* kind, Pred ok) {
    const json* v = Raw(key);
    if (!j_) return nullptr;  // the parent already failed
    if (!v || !ok(*v)) {
      Fail("field '" + prefix_ + key + "' is missing or not " + kind);
      return nullptr;
    }
    return v;
  }

  const json* j_;
  std::string prefix_;
  FieldReader* parent_ = nullptr;
  std::string error_;
};

template <typename T>
Result<T> Finish(const FieldReader& r, T value) {
  if (r.error().empty()) return value;
  return Status::Corrupt("malformed reply from the media agent: " + r.error());
}

ExportInfo ReadExportInfo(FieldReader& r) {
  ExportInfo e;
  r.Read("running", &e.running);
  r.Read("pid", &e.pid);
  r.Read("path", &e.path);
  r.Read("pseudo", &e.pseudo);
  r.Read("bind", &e.bind);
  r.Read("nfs_port", &e.nfs_port);
  r.Read("mount_port", &e.mount_port);
  r.Read("clients", &e.clients);
  r.Read("read_only", &e.read_only);
  r.Read("config", &e.config);
  r.Read("log", &e.log);
  return e;
}

// An error reply as its Status, or Ok.
Status ErrorOf(const json& j) {
  if (!j.is_object()) return Status::Corrupt("malformed reply from the media agent: not a JSON object");
  auto e = j.find("error");
  if (e == j.end()) return Status::Ok();
  std::string text = e->is_string() ? e->get<std::string>() : "malformed error";
  Code code = Code::kIoError;
  if (auto c = j.find("code"); c != j.end() && c->is_number_integer()) {
    int64_t v = c->get<int64_t>();
    if (v > 0 && v <= static_cast<int64_t>(Code::kLastCode)) code = static_cast<Code>(v);
  }
  return Status::Of(code, "media agent: " + text);
}

}  // namespace

json EncodeRequest(const Request& r) {
  struct Encoder {
    json operator()(const StatsRequest&) const { return {{"cmd", "stats"}}; }
    json operator()(const ExportRequest& e) const {
      return {{"cmd", "export"},  {"bind", e.bind},       {"nfs_port", e.nfs_port}, {"mount_port", e.mount_port},
              {"clients", e.clients}, {"read_only", e.read_only}};
    }
    json operator()(const UnexportRequest&) const { return {{"cmd", "unexport"}}; }
    json operator()(const PrestageRequest& p) const {
      return {{"cmd", "prestage"}, {"backup", p.backup}, {"profile", p.profile}, {"all", p.all}, {"pin_until", p.pin_until},
              {"threads", p.threads}, {"background", p.background}};
    }
    json operator()(const DiscardRequest& d) const { return {{"cmd", "discard"}, {"backup", d.backup}}; }
    json operator()(const ExpireRequest& e) const { return {{"cmd", "expire"}, {"backup", e.backup}, {"after", e.after}}; }
    json operator()(const ChangesRequest& c) const { return {{"cmd", "changes"}, {"backup", c.backup}, {"sync", c.sync}}; }
  };
  return std::visit(Encoder{}, r);
}

Result<Request> DecodeRequest(const json& j) {
  if (!j.is_object()) return Status::Invalid("malformed request: not a JSON object");
  FieldReader r(&j);
  auto malformed = [&] { return Status::Invalid("malformed request: " + r.error()); };
  std::string cmd;
  r.Read("cmd", &cmd);
  if (!r.error().empty()) return malformed();
  if (cmd == "stats") return Request(StatsRequest{});
  if (cmd == "unexport") return Request(UnexportRequest{});
  if (cmd == "export") {
    ExportRequest e;
    r.Read("bind", &e.bind);
    r.Read("nfs_port", &e.nfs_port);
    r.Read("mount_port", &e.mount_port);
    r.Read("clients", &e.clients);
    r.Read("read_only", &e.read_only);
    if (!r.error().empty()) return malformed();
    return Request(std::move(e));
  }
  if (cmd == "prestage") {
    PrestageRequest p;
    r.Read("backup", &p.backup);
    r.Read("profile", &p.profile);
    r.Read("all", &p.all);
    r.Read("pin_until", &p.pin_until);
    if (r.Raw("threads")) r.Read("threads", &p.threads);  // absent from older clients
    if (r.Raw("background")) r.Read("background", &p.background);
    if (!r.error().empty()) return malformed();
    if (p.threads < 1 || p.threads > 64) return Status::Invalid("malformed request: threads must be 1-64");
    return Request(std::move(p));
  }
  if (cmd == "discard") {
    DiscardRequest d;
    r.Read("backup", &d.backup);
    if (!r.error().empty()) return malformed();
    return Request(std::move(d));
  }
  if (cmd == "changes") {
    ChangesRequest c;
    r.Read("backup", &c.backup);
    r.Read("sync", &c.sync);
    if (!r.error().empty()) return malformed();
    return Request(std::move(c));
  }
  if (cmd == "expire") {
    ExpireRequest e;
    r.Read("backup", &e.backup);
    r.Read("after", &e.after);
    if (!r.error().empty()) return malformed();
    if (e.after < 0) return Status::Invalid("malformed request: after must not be negative");
    return Request(std::move(e));
  }
  return Status::Invalid("unknown command '" + cmd + "'");
}

json Encode(const ExportInfo& e) {
  return {{"running", e.running}, {"pid", e.pid},         {"path", e.path},         {"pseudo", e.pseudo},
          {"bind", e.bind},       {"nfs_port", e.nfs_port}, {"mount_port", e.mount_port}, {"clients", e.clients},
          {"read_only", e.read_only}, {"config", e.config}, {"log", e.log}};
}

json Encode(const MountStats& s) {
  json overlays = json::array();
  for (auto& o : s.overlays) overlays.push_back({{"backup", o.backup}, {"files", o.files}, {"bytes", o.bytes}});
  const auto& c = s.cache;
  json requests = json::object();
  for (auto& [kind, q] : s.requests) {
    requests[kind] = {{"requests", q.requests}, {"gets", q.gets},       {"bytes_in", q.bytes_in},
                      {"bytes_out", q.bytes_out}, {"retries", q.retries}, {"failures", q.failures},
                      {"p50_ms", q.p50_ms},       {"p90_ms", q.p90_ms},   {"p99_ms", q.p99_ms}};
  }
  return {
      {"mountpoint", s.mountpoint},
      {"repository", s.repository},
      {"state_dir", s.state_dir},
      {"pid", s.pid},
      {"cache",
       {{"dir", c.dir}, {"hits", c.hits}, {"misses", c.misses}, {"bytes_served", c.bytes_served},
        {"inserts", c.inserts}, {"evictions", c.evictions}, {"corrupt_dropped", c.corrupt_dropped},
        {"insert_failures", c.insert_failures}, {"entries", c.entries}, {"size", c.size},
        {"capacity", c.capacity}, {"pinned", c.pinned}}},
      {"repo",
       {{"chunks_fetched", s.repo.chunks_fetched}, {"bytes_fetched", s.repo.bytes_fetched},
        {"raw_bytes_fetched", s.repo.raw_bytes_fetched}, {"errors", s.repo.errors}}},
      {"reads",
       {{"requests", s.reads.requests}, {"bytes", s.reads.bytes}, {"errors", s.reads.errors},
        {"zero_bytes", s.reads.zero_bytes}, {"opens", s.reads.opens}}},
      {"writes", {{"requests", s.writes.requests}, {"bytes", s.writes.bytes}}},
      {"overlays", overlays},
      {"readahead", {{"queued", s.readahead.queued}, {"fetched", s.readahead.fetched}}},
      {"prestage",
       {{"chunks", s.prestage.chunks}, {"bytes", s.prestage.bytes}, {"running", s.prestage.running},
        {"yielded_to_guest_reads", s.prestage.yielded_to_guest_reads},
        {"remaining_chunks", s.prestage.remaining_chunks}, {"remaining_bytes", s.prestage.remaining_bytes},
        {"seconds_left", s.prestage.seconds_left}}},
      {"requests", requests},
      {"metadata", {{"hits", s.metadata.hits}, {"misses", s.metadata.misses}, {"dropped", s.metadata.dropped}}},
      {"namespace", {{"nodes", s.namespace_nodes}}},
      {"expiry", s.expiry},
      {"export", s.export_ ? Encode(*s.export_) : json(nullptr)},
  };
}

json Encode(const UnexportReply& r) { return {{"ok", true}, {"was_exported", r.was_exported}}; }

json Encode(const PrestageReply& r) {
  return {{"backup", r.backup},           {"profile", r.profile},
          {"profile_chunks", r.profile_chunks}, {"total_chunks", r.total_chunks},
          {"already_cached", r.already_cached}, {"fetched", r.fetched},
          {"failed", r.failed},           {"bytes_fetched", r.bytes_fetched},
          {"missing_files", r.missing_files}, {"seconds", r.seconds}};
}

json Encode(const DiscardReply& r) { return {{"ok", true}, {"backup", r.backup}}; }
json Encode(const ExpireReply& r) { return {{"backup", r.backup}, {"deadline", r.deadline}}; }

json Encode(const ChangesReply& r) {
  json files = json::array();
  for (const ChangesReply::File& f : r.files) {
    json written = json::array();
    for (auto& [a, b] : f.written) written.push_back({a, b});
    json j = {{"size", f.size}, {"base", f.base}, {"base_size", f.base_size}, {"base_limit", f.base_limit},
              {"written", written}};
    SetBytesField(j, "path", f.path);
    files.push_back(std::move(j));
  }
  return {{"backup", r.backup}, {"generation", r.generation}, {"files", files}};
}

json EncodeError(const Status& s) {
  return {{"error", s.message()}, {"code", static_cast<int>(s.code())}};
}

template <>
Result<ExportInfo> DecodeReply<ExportInfo>(const json& j) {
  LM_RETURN_IF_ERROR(ErrorOf(j));
  FieldReader r(&j);
  ExportInfo e = ReadExportInfo(r);
  return Finish(r, e);
}

template <>
Result<MountStats> DecodeReply<MountStats>(const json& j) {
  LM_RETURN_IF_ERROR(ErrorOf(j));
  FieldReader r(&j);
  MountStats s;
  r.Read("mountpoint", &s.mountpoint);
  r.Read("repository", &s.repository);
  r.Read("state_dir", &s.state_dir);
  r.Read("pid", &s.pid);
  FieldReader c = r.Object("cache");
  c.Read("dir", &s.cache.dir);
  c.Read("hits", &s.cache.hits);
  c.Read("misses", &s.cache.misses);
  c.Read("bytes_served", &s.cache.bytes_served);
  c.Read("inserts", &s.cache.inserts);
  c.Read("evictions", &s.cache.evictions);
  c.Read("corrupt_dropped", &s.cache.corrupt_dropped);
  c.Read("insert_failures", &s.cache.insert_failures);
  c.Read("entries", &s.cache.entries);
  c.Read("size", &s.cache.size);
  c.Read("capacity", &s.cache.capacity);
  c.Read("pinned", &s.cache.pinned);
  FieldReader rp = r.Object("repo");
  rp.Read("chunks_fetched", &s.repo.chunks_fetched);
  rp.Read("bytes_fetched", &s.repo.bytes_fetched);
  rp.Read("raw_bytes_fetched", &s.repo.raw_bytes_fetched);
  rp.Read("errors", &s.repo.errors);
  FieldReader rd = r.Object("reads");
  rd.Read("requests", &s.reads.requests);
  rd.Read("bytes", &s.reads.bytes);
  rd.Read("errors", &s.reads.errors);
  rd.Read("zero_bytes", &s.reads.zero_bytes);
  rd.Read("opens", &s.reads.opens);
  FieldReader w = r.Object("writes");
  w.Read("requests", &s.writes.requests);
  w.Read("bytes", &s.writes.bytes);
  const json* overlays = r.Raw("overlays");
  if (!overlays || !overlays->is_array()) {
    r.Fail("field 'overlays' is missing or not a list");
  } else {
    for (const json& o : *overlays) {
      FieldReader ov(&o, "overlays[].");
      OverlayInfo info;
      ov.Read("backup", &info.backup);
      ov.Read("files", &info.files);
      ov.Read("bytes", &info.bytes);
      if (!ov.error().empty()) r.Fail(ov.error());
      s.overlays.push_back(std::move(info));
    }
  }
  FieldReader ra = r.Object("readahead");
  ra.Read("queued", &s.readahead.queued);
  ra.Read("fetched", &s.readahead.fetched);
  FieldReader ps = r.Object("prestage");
  ps.Read("chunks", &s.prestage.chunks);
  ps.Read("bytes", &s.prestage.bytes);
  ps.Read("running", &s.prestage.running);
  ps.Read("yielded_to_guest_reads", &s.prestage.yielded_to_guest_reads);
  ps.Read("remaining_chunks", &s.prestage.remaining_chunks);
  ps.Read("remaining_bytes", &s.prestage.remaining_bytes);
  ps.Read("seconds_left", &s.prestage.seconds_left);
  if (const json* rq = r.Raw("requests"); rq && rq->is_object()) {
    for (auto& [kind, v] : rq->items()) {
      FieldReader k(&v, "requests." + kind + ".");
      control::MountStats::Requests q;
      k.Read("requests", &q.requests);
      k.Read("gets", &q.gets);
      k.Read("bytes_in", &q.bytes_in);
      k.Read("bytes_out", &q.bytes_out);
      k.Read("retries", &q.retries);
      k.Read("failures", &q.failures);
      k.Read("p50_ms", &q.p50_ms);
      k.Read("p90_ms", &q.p90_ms);
      k.Read("p99_ms", &q.p99_ms);
      if (!k.error().empty()) r.Fail(k.error());
      s.requests[kind] = q;
    }
  } else if (rq) {
    r.Fail("field 'requests' is not an object");
  }
  FieldReader md = r.Object("metadata");
  md.Read("hits", &s.metadata.hits);
  md.Read("misses", &s.metadata.misses);
  md.Read("dropped", &s.metadata.dropped);
  r.Object("namespace").Read("nodes", &s.namespace_nodes);
  if (const json* ex = r.Raw("expiry"); ex && ex->is_object()) {
    for (auto& [name, v] : ex->items()) {
      if (!v.is_number_integer()) {
        r.Fail("field 'expiry." + name + "' is not an integer");
        break;
      }
      s.expiry[name] = v.get<int64_t>();
    }
  } else if (ex) {
    r.Fail("field 'expiry' is not an object");
  }
  const json* ex = r.Raw("export");
  if (ex && ex->is_object()) {
    FieldReader er(ex, "export.");
    s.export_ = ReadExportInfo(er);
    if (!er.error().empty()) r.Fail(er.error());
  } else if (ex && !ex->is_null()) {
    r.Fail("field 'export' is neither an object nor null");
  }
  return Finish(r, std::move(s));
}

template <>
Result<UnexportReply> DecodeReply<UnexportReply>(const json& j) {
  LM_RETURN_IF_ERROR(ErrorOf(j));
  FieldReader r(&j);
  UnexportReply u;
  r.Read("was_exported", &u.was_exported);
  return Finish(r, u);
}

template <>
Result<PrestageReply> DecodeReply<PrestageReply>(const json& j) {
  LM_RETURN_IF_ERROR(ErrorOf(j));
  FieldReader r(&j);
  PrestageReply p;
  r.Read("backup", &p.backup);
  r.Read("profile", &p.profile);
  r.Read("profile_chunks", &p.profile_chunks);
  r.Read("total_chunks", &p.total_chunks);
  r.Read("already_cached", &p.already_cached);
  r.Read("fetched", &p.fetched);
  r.Read("failed", &p.failed);
  r.Read("bytes_fetched", &p.bytes_fetched);
  r.Read("missing_files", &p.missing_files);
  r.Read("seconds", &p.seconds);
  return Finish(r, p);
}

template <>
Result<DiscardReply> DecodeReply<DiscardReply>(const json& j) {
  LM_RETURN_IF_ERROR(ErrorOf(j));
  FieldReader r(&j);
  DiscardReply d;
  r.Read("backup", &d.backup);
  return Finish(r, d);
}

template <>
Result<ExpireReply> DecodeReply<ExpireReply>(const json& j) {
  LM_RETURN_IF_ERROR(ErrorOf(j));
  FieldReader r(&j);
  ExpireReply e;
  r.Read("backup", &e.backup);
  r.Read("deadline", &e.deadline);
  return Finish(r, e);
}

template <>
Result<ChangesReply> DecodeReply<ChangesReply>(const json& j) {
  LM_RETURN_IF_ERROR(ErrorOf(j));
  FieldReader r(&j);
  ChangesReply c;
  r.Read("backup", &c.backup);
  r.Read("generation", &c.generation);
  const json* files = r.Raw("files");
  if (!files || !files->is_array()) {
    r.Fail("field 'files' is missing or not a list");
    return Finish(r, std::move(c));
  }
  for (const json& f : *files) {
    FieldReader fr(&f, "files[].");
    ChangesReply::File file;
    fr.Read("size", &file.size);
    fr.Read("base", &file.base);
    fr.Read("base_size", &file.base_size);
    fr.Read("base_limit", &file.base_limit);
    auto path = f.is_object() ? GetBytesField(f, "path", "files[]") : Result<std::string>(Status::Corrupt("files[]: not an object"));
    if (!path.ok()) fr.Fail(path.status().message());
    else file.path = *path;
    const json* w = fr.Raw("written");
    if (!w || !w->is_array()) {
      fr.Fail("field 'files[].written' is missing or not a list");
    } else {
      for (const json& range : *w) {
        if (!range.is_array() || range.size() != 2 || !range[0].is_number_unsigned() || !range[1].is_number_unsigned() ||
            range[0].get<uint64_t>() > range[1].get<uint64_t>()) {
          fr.Fail("field 'files[].written' holds a range that is not [start, end]");
          break;
        }
        file.written.push_back({range[0].get<uint64_t>(), range[1].get<uint64_t>()});
      }
    }
    if (!fr.error().empty()) {
      r.Fail(fr.error());
      break;
    }
    c.files.push_back(std::move(file));
  }
  return Finish(r, std::move(c));
}

}  // namespace lm::control

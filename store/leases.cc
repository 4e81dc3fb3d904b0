#include "store/leases.h"

#include <unistd.h>

#include <cinttypes>
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/log.h"

namespace lm {

using nlohmann::json;

namespace {

std::string SeqName(uint64_t seq) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, seq);
  return buf;
}

}  // namespace

std::string EncodeLease(const Lease& l) {
  json holds = json::array();
  for (auto& [backup, why] : l.holds) holds.push_back({{"backup", backup}, {"why", why}});
  json j = {{"format", "livemount-lease"}, {"host", l.host},    {"pid", l.pid}, {"pid_start", l.pid_start},
            {"renewed_ns", l.renewed_ns},  {"ttl_s", l.ttl_s}, {"holds", holds}};
  return j.dump() + "\n";
}

Result<Lease> DecodeLease(const std::string& text, const std::string& where) {
  json j = json::parse(text, nullptr, false);
  auto bad = [&](const std::string& what) { return Status::Corrupt(where + ": " + what); };
  if (j.is_discarded() || !j.is_object() || j.value("format", json()) != "livemount-lease") {
    return bad("not a livemount lease");
  }
  Lease l;
  auto host = j.find("host"), pid = j.find("pid"), renewed = j.find("renewed_ns"), ttl = j.find("ttl_s"),
       holds = j.find("holds");
  if (host == j.end() || !host->is_string()) return bad("field 'host' is missing or not a string");
  if (pid == j.end() || !pid->is_number_integer()) return bad("field 'pid' is missing or not an integer");
  auto pid_start = j.find("pid_start");
  if (pid_start == j.end() || !pid_start->is_number_unsigned()) return bad("field 'pid_start' is missing or not an integer");
  l.pid_start = *pid_start;
  if (renewed == j.end() || !renewed->is_number_integer()) return bad("field 'renewed_ns' is missing or not an integer");
  if (ttl == j.end() || !ttl->is_number_integer() || *ttl < 1) return bad("field 'ttl_s' is missing or not positive");
  if (holds == j.end() || !holds->is_array()) return bad("field 'holds' is missing or not a list");
  l.host = *host;
  l.pid = *pid;
  l.renewed_ns = *renewed;
  l.ttl_s = *ttl;
  for (const json& h : *holds) {
    if (!h.is_object() || !h.contains("backup") || !h["backup"].is_string() || !h.contains("why") ||
        !h["why"].is_array()) {
      return bad("a hold is malformed");
    }
    auto& why = l.holds[h["backup"].get<std::string>()];
    for (const json& w : h["why"])
      if (w.is_string()) why.push_back(w);
  }
  return l;
}

Result<std::vector<Lease>> ReadLeases(Backend& backend) {
  LM_ASSIGN_OR_RETURN(auto objects, backend.List("leases/"));
  std::map<std::string, std::string> latest;  // holder -> object (names sort by seq)
  for (const ObjectInfo& o : objects) {
    size_t slash = o.name.find('/', 7);
    if (slash == std::string::npos) continue;
    latest[o.name.substr(7, slash - 7)] = o.name;
  }
  std::vector<Lease> out;
  for (auto& [holder, name] : latest) {
    auto text = backend.ReadAll(name);
    if (!text.ok()) continue;  // replaced meanwhile: the holder is alive and wrote a newer one
    auto l = DecodeLease(*text, backend.Describe(name));
    if (!l.ok()) {
      LogWarn(l.status().message() + " (ignored)");
      continue;
    }
    l->holder = holder;
    l->object = name;
    out.push_back(std::move(*l));
  }
  return out;
}

bool LeaseLive(const Lease& l, Env* env) {
  if (l.host == HostName()) {
    // The agent's process, not another that reused its pid after a crash.
    pid_t pid = static_cast<pid_t>(l.pid);
    return ProcessAlive(pid) && ProcessStartTime(pid) == l.pid_start;
  }
  return env->NowMicros() * 1000 < l.renewed_ns + l.ttl_s * int64_t{1000000000};
}

Result<std::map<std::string, std::string>> HeldCopies(Backend& backend, Env* env) {
  LM_ASSIGN_OR_RETURN(auto leases, ReadLeases(backend));
  std::map<std::string, std::string> held;
  for (const Lease& l : leases) {
    if (!LeaseLive(l, env)) continue;
    for (auto& [backup, why] : l.holds) {
      std::string reasons;
      for (auto& w : why) reasons += (reasons.empty() ? "" : ", ") + w;
      held.emplace(backup, "held by a media agent on " + l.host + " (pid " + std::to_string(l.pid) + ")" +
                               (reasons.empty() ? "" : ": " + reasons));
    }
  }
  return held;
}

LeaseWriter::LeaseWriter(Backend& backend, Env* env, int64_t ttl_s)
    : backend_(backend), env_(env), ttl_s_(ttl_s) {
  holder_ = HostName() + "-" + std::to_string(::getpid()) + "-" + RandomHex(4);
  for (char& c : holder_) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) c = '_';
  }
}

LeaseWriter::~LeaseWriter() { Release(); }

Status LeaseWriter::PublishLocked(const std::map<std::string, std::vector<std::string>>& holds) {
  Lease l;
  l.host = HostName();
  l.pid = ::getpid();
  l.pid_start = ProcessStartTime(::getpid());
  l.renewed_ns = env_->NowMicros() * 1000;
  l.ttl_s = ttl_s_;
  l.holds = holds;
  std::string name = "leases/" + holder_ + "/" + SeqName(++seq_) + ".json";
  LM_RETURN_IF_ERROR(backend_.Create(name, EncodeLease(l)));
  if (!current_.empty()) (void)backend_.Delete(current_);  // readers take the newest anyway
  current_ = name;
  holds_ = holds;
  renewed_ns_ = l.renewed_ns;
  return Status::Ok();
}

Status LeaseWriter::Set(std::map<std::string, std::vector<std::string>> holds) {
  std::lock_guard lock(mu_);
  for (auto& [backup, why] : added_) {
    auto& mine = holds[backup];
    for (auto& w : why)
      if (std::find(mine.begin(), mine.end(), w) == mine.end()) mine.push_back(w);
  }
  added_.clear();
  bool due = env_->NowMicros() * 1000 - renewed_ns_ > ttl_s_ * int64_t{1000000000} / 3;
  if (holds == holds_ && (holds.empty() || !due)) {
    if (holds.empty() && !current_.empty()) {
      (void)backend_.Delete(current_);
      current_.clear();
    }
    return Status::Ok();
  }
  if (holds.empty()) {
    if (!current_.empty()) (void)backend_.Delete(current_);
    current_.clear();
    holds_.clear();
    return Status::Ok();
  }
  return PublishLocked(holds);
}

Status LeaseWriter::Add(const std::string& backup, const std::string& why) {
  std::lock_guard lock(mu_);
  auto it = holds_.find(backup);
  if (it != holds_.end() && std::find(it->second.begin(), it->second.end(), why) != it->second.end()) {
    return Status::Ok();
  }
  if (it != holds_.end() && !it->second.empty()) {
    // Already held (a pin): the published lease protects it, and the reason is only shown.
    // No request now, so the hypervisor's first open of a pre-staged copy waits on nothing;
    // the next Set() publishes the reason.
    added_[backup].push_back(why);
    return Status::Ok();
  }
  auto holds = holds_;
  holds[backup].push_back(why);
  added_[backup].push_back(why);
  return PublishLocked(holds);
}

void LeaseWriter::Release() {
  std::lock_guard lock(mu_);
  if (!current_.empty()) (void)backend_.Delete(current_);
  current_.clear();
  holds_.clear();
}

}  // namespace lm

#include "store/backend/s3/s3_lock.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "base/env.h"
#include "base/log.h"
#include "store/backend/s3/s3_backend.h"

namespace lm::s3 {

namespace {

using nlohmann::json;

struct Holder {
  std::string mode, host;
  int64_t pid = 0;
  uint64_t pid_start = 0;
};

const char* ModeName(LockMode m) { return m == LockMode::kShared ? "shared" : "exclusive"; }

std::string SeqHex(uint32_t seq) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", seq);
  return buf;
}

// "locks/<mode>-<host>-<pid>-<rand>-<seq>" -> "locks/<mode>-<host>-<pid>-<rand>" (the holder).
std::string HolderOf(const std::string& name) {
  size_t dash = name.rfind('-');
  return dash == std::string::npos ? name : name.substr(0, dash);
}

class S3Lock : public BackendLock {
 public:
  S3Lock(S3Backend& backend, std::string holder, std::string body, const LockOptions& o)
      : backend_(backend), holder_(std::move(holder)), body_(std::move(body)), refresh_s_(o.refresh_s),
        stale_s_(o.stale_s), last_refresh_(std::chrono::steady_clock::now()) {
    thread_ = std::thread([this] { Refresh(); });
  }
  ~S3Lock() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    Status s = backend_.Delete(Current());
    if (!s.ok()) LogWarn("could not release the repository lock: " + s.ToString());
  }
  std::string Current() const { return holder_ + "-" + SeqHex(seq_); }

  Status Check() const override {
    std::lock_guard<std::mutex> lock(mu_);
    NoteLapseLocked();
    if (!lost_) return Status::Ok();
    return Status::IoError(backend_.location() + ": the repository lock went " + std::to_string(lost_for_s_) +
                           " s without a refresh (the object store did not answer), so another process may "
                           "have taken it; stopping");
  }

 private:
  // Others see the lock stale `stale_s` after its newest object; it counts as lost a
  // refresh period before that, and stays lost (someone may have acted meanwhile).
  void NoteLapseLocked() const {
    double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_refresh_).count();
    if (since > double(stale_s_ - refresh_s_) && !lost_) {
      lost_ = true;
      lost_for_s_ = int64_t(since);
    }
  }

  // Publishes the next <seq>, then deletes the previous: a live lock always has an object.
  // After a failure it tries again within seconds, not a whole period later.
  void Refresh() {
    std::unique_lock<std::mutex> lock(mu_);
    int64_t wait_s = refresh_s_;
    while (!cv_.wait_for(lock, std::chrono::seconds(wait_s), [this] { return stop_; })) {
      lock.unlock();
      std::string old = Current();
      Status s = backend_.Put(holder_ + "-" + SeqHex(seq_ + 1), body_);
      if (s.ok()) {
        seq_++;
        Status d = backend_.Delete(old);  // a leftover older seq is harmless: the newest counts
        if (!d.ok()) LogWarn("could not delete the previous repository lock object: " + d.ToString());
      } else {
        LogWarn("could not refresh the repository lock: " + s.ToString());
      }
      lock.lock();
      NoteLapseLocked();
      if (s.ok()) last_refresh_ = std::chrono::steady_clock::now();
      wait_s = s.ok() ? refresh_s_ : std::min<int64_t>(refresh_s_, 5);
    }
  }

  S3Backend& backend_;
  std::string holder_, body_;
  int64_t refresh_s_, stale_s_;
  std::chrono::steady_clock::time_point last_refresh_;  // of the newest object (under mu_)
  mutable bool lost_ = false;
  mutable int64_t lost_for_s_ = 0;
  uint32_t seq_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Live locks other than `self`, newest object of each holder: holder -> who.
Result<std::map<std::string, Holder>> LiveLocks(S3Backend& backend, S3Client& client, const std::string& self,
                                                const LockOptions& o) {
  LM_ASSIGN_OR_RETURN(auto objects, backend.ListDetailed("locks/"));
  int64_t now = client.ServerNow();  // the listing just set the server's clock
  std::map<std::string, ListedObject> newest;
  for (auto& obj : objects) {
    std::string h = HolderOf(obj.key);
    if (h == self) continue;
    auto it = newest.find(h);
    if (it == newest.end() || obj.key > it->second.key) newest[h] = obj;
  }
  std::map<std::string, Holder> live;
  for (auto& [h, obj] : newest) {
    if (obj.last_modified > 0 && now - obj.last_modified > o.stale_s) continue;  // stale by server time
    Holder who;
    who.mode = h.rfind("locks/shared-", 0) == 0 ? "shared" : "exclusive";
    who.host = h.substr(h.find('-') + 1);  // "<host>-<pid>-<rand>" for messages
    // Only a lock of this host can be judged by its process: only then is its body needed.
    if (h.rfind("locks/" + who.mode + "-" + HostName() + "-", 0) != 0) {
      live[h] = who;
      continue;
    }
    auto body = backend.ReadAll(obj.key);
    if (!body.ok() && body.status().code() == Code::kNotFound) continue;  // released meanwhile
    // The name says the mode and host; the body, the process (fields of the wrong type,
    // from whoever wrote the bucket, are ignored, never thrown).
    json j = body.ok() ? json::parse(*body, nullptr, false) : json();
    if (j.is_object()) {
      if (auto p = j.find("pid"); p != j.end() && p->is_number_integer()) who.pid = p->get<int64_t>();
      if (auto t = j.find("pid_start"); t != j.end() && t->is_number_unsigned()) who.pid_start = t->get<uint64_t>();
    }
    // On this host a dead process's lock is stale at once (a reused pid has another start).
    if (who.pid > 0 && (!ProcessAlive(pid_t(who.pid)) || ProcessStartTime(pid_t(who.pid)) != who.pid_start)) {
      continue;
    }
    live[h] = who;
  }
  return live;
}

}  // namespace

Result<std::unique_ptr<BackendLock>> AcquireLock(S3Backend& backend, S3Client& client, LockMode mode,
                                                 const LockOptions& o) {
  std::string holder = "locks/" + std::string(ModeName(mode)) + "-" + HostName() + "-" +
                       std::to_string(::getpid()) + "-" + RandomHex(4);
  json body = {{"format", "livemount-lock"}, {"mode", ModeName(mode)}, {"host", HostName()},
               {"pid", int64_t(::getpid())}, {"pid_start", ProcessStartTime(::getpid())}};
  auto start = std::chrono::steady_clock::now();
  bool told = false;
  for (;;) {
    std::string first = holder + "-" + SeqHex(0);
    LM_RETURN_IF_ERROR(backend.Put(first, body.dump()));
    auto lock = std::make_unique<S3Lock>(backend, holder, body.dump(), o);
    LM_ASSIGN_OR_RETURN(auto others, LiveLocks(backend, client, holder, o));
    std::string conflict;
    for (auto& [h, who] : others) {
      if (mode == LockMode::kExclusive || who.mode == "exclusive") {
        conflict = who.mode + " lock of " + who.host + (who.pid ? " (pid " + std::to_string(who.pid) + ")" : "");
        if (who.mode == "exclusive") break;
      }
    }
    if (conflict.empty()) return std::unique_ptr<BackendLock>(std::move(lock));
    lock.reset();  // withdraws our object
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (mode == LockMode::kExclusive) {
      return Status::Busy(backend.location() + ": the repository is in use (" + conflict + ")");
    }
    if (waited > o.shared_wait_s) {
      return Status::Busy(backend.location() + ": maintenance holds the repository (" + conflict + ")");
    }
    if (!told) LogInfo(backend.location() + ": waiting for maintenance to finish (" + conflict + ")");
    told = true;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

}  // namespace lm::s3

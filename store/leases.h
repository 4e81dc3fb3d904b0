// Leases: which backup copies a running media agent holds (open files, an overlay, chunks
// pinned by a pre-stage), written into the repository so that `forget` on any host sees
// them and keeps those copies until they are released.
//
//   leases/<holder>/<seq>.json   <holder> = <host>-<pid>-<8 hex>, <seq> = 16 hex digits
//   {"format": "livemount-lease", "host": "agent1", "pid": 4242, "pid_start": 81234,
//    "renewed_ns": ...,
//    "ttl_s": 900, "holds": [{"backup": "vm1@20261126T000000Z", "why": ["open files"]}]}
//
// Objects are immutable, so a holder publishes each new state as the next <seq> and then
// deletes the one before; readers take the highest <seq> of each holder. A lease counts
// while renewed within its ttl, or while its process runs (same host, checked by pid), so
// a crashed agent on this host frees its copies at once (a process that reuses its pid
// has another start time), one on another host after ttl.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/env.h"
#include "store/backend/backend.h"
#include "store/repository.h"

namespace lm {

struct Lease {
  std::string holder, host;
  int64_t pid = 0;
  uint64_t pid_start = 0;  // ProcessStartTime(pid): tells the agent from a later process
  int64_t renewed_ns = 0;
  int64_t ttl_s = 900;
  std::map<std::string, std::vector<std::string>> holds;  // "vm@id" -> why
  std::string object;  // its object name
};

std::string EncodeLease(const Lease& l);
Result<Lease> DecodeLease(const std::string& json, const std::string& where);

// The latest lease of every holder, live or not; damaged ones are skipped.
Result<std::vector<Lease>> ReadLeases(Backend& backend);
// True while the lease still holds (see above).
bool LeaseLive(const Lease& l, Env* env);

// What live leases hold: "vm@id" -> "held by a media agent on HOST (pid N): open files".
Result<std::map<std::string, std::string>> HeldCopies(Backend& backend, Env* env);

// The writing side, for a media agent: Set() publishes a new state when the holds change
// or the lease is due for renewal (ttl/3), synchronously, so a copy is held before the
// caller goes on. Release() deletes the lease.
class LeaseWriter {
 public:
  LeaseWriter(Backend& backend, Env* env, int64_t ttl_s = 900);
  ~LeaseWriter();
  // Holds added by Add() since the previous Set() are kept too (the caller computed
  // `holds` before them); the next Set() may drop them.
  Status Set(std::map<std::string, std::vector<std::string>> holds);
  // Adds one hold now if the current lease lacks it (first open of a copy, a pin); a copy
  // the lease already holds for another reason costs no request.
  Status Add(const std::string& backup, const std::string& why);
  void Release();
  int64_t ttl_s() const { return ttl_s_; }

 private:
  Status PublishLocked(const std::map<std::string, std::vector<std::string>>& holds);
  Backend& backend_;
  Env* env_;
  int64_t ttl_s_;
  std::string holder_;
  std::mutex mu_;
  uint64_t seq_ = 0;
  std::string current_;  // object name of the published lease
  std::map<std::string, std::vector<std::string>> holds_;
  // Added since the last Set(): a Set computed before such an Add must not drop it.
  std::map<std::string, std::vector<std::string>> added_;
  int64_t renewed_ns_ = 0;
};

}  // namespace lm

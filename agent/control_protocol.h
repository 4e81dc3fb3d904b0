// The media agent's control protocol, typed. Both sides use these structs and codecs: the
// agent decodes requests and encodes replies (agent/agent_control.cc), the CLI encodes
// requests and decodes replies (ControlClient); no key is spelled anywhere else.
//
// Wire (agent/control.h carries it): one JSON object per line each way.
//   request  {"cmd": "stats" | "export" | "unexport" | "prestage" | "discard" | "expire" | "changes",
//             ...fields}
//   reply    the reply's fields, or {"error": "<one line>", "code": <lm::Code as int>}
// Decoders are strict: a missing field or one of the wrong type is Corrupt (a reply) or
// Invalid (a request), naming the field; an error reply keeps its code, so Busy stays Busy.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace lm::control {

// ---- requests ----
struct StatsRequest {};
struct ExportRequest {
  std::string bind = "0.0.0.0";
  uint16_t nfs_port = 2049;
  uint16_t mount_port = 20048;
  std::vector<std::string> clients;  // empty: 127.0.0.1 only
  bool read_only = false;
};
struct UnexportRequest {};
struct PrestageRequest {
  std::string backup;   // VM@BACKUP
  std::string profile;  // absolute path of a profile file, "" for the agent's choice
  bool all = false;     // then every other chunk of the copy too
  int64_t pin_until = 0;  // unix seconds; 0: for as long as the mount lives
  uint64_t threads = 8;   // parallel fetches (1-64)
  bool background = false;  // reply once it started (the guest boots meanwhile; its reads go first)
};
struct DiscardRequest {
  std::string backup;  // VM@BACKUP
};
struct ExpireRequest {
  std::string backup;  // VM@BACKUP
  int64_t after = 0;   // seconds from now; 0: remove the copy's policy
};
// A copy's files and what of them the overlay holds (backup --from-mount).
struct ChangesRequest {
  std::string backup;  // VM@BACKUP
  bool sync = true;    // first make every write of the copy durable (a consistent point)
};
using Request = std::variant<StatsRequest, ExportRequest, UnexportRequest, PrestageRequest, DiscardRequest,
                             ExpireRequest, ChangesRequest>;

nlohmann::json EncodeRequest(const Request& r);
Result<Request> DecodeRequest(const nlohmann::json& j);

// ---- replies ----
struct ExportInfo {
  bool running = false;
  int64_t pid = 0;
  std::string path, pseudo, bind;
  uint16_t nfs_port = 0, mount_port = 0;
  std::vector<std::string> clients;
  bool read_only = false;
  std::string config, log;
};

struct OverlayInfo {
  std::string backup;
  uint64_t files = 0, bytes = 0;
};

struct MountStats {
  std::string mountpoint, repository;
  std::string state_dir;  // where its overlays are
  int64_t pid = 0;
  struct Cache {
    std::string dir;
    uint64_t hits = 0, misses = 0, bytes_served = 0, inserts = 0, evictions = 0,
             corrupt_dropped = 0, insert_failures = 0, entries = 0, size = 0, capacity = 0, pinned = 0;
  } cache;
  struct Repo {
    uint64_t chunks_fetched = 0, bytes_fetched = 0, raw_bytes_fetched = 0, errors = 0;
  } repo;
  struct Reads {
    uint64_t requests = 0, bytes = 0, errors = 0, zero_bytes = 0, opens = 0;
  } reads;
  struct Writes {
    uint64_t requests = 0, bytes = 0;
  } writes;
  std::vector<OverlayInfo> overlays;
  struct Readahead {
    uint64_t queued = 0, fetched = 0;
  } readahead;
  struct Prestage {
    uint64_t chunks = 0, bytes = 0, running = 0, yielded_to_guest_reads = 0;
    uint64_t remaining_chunks = 0, remaining_bytes = 0;  // of the pre-stagings running now
    double seconds_left = 0;  // at their rate so far; 0 when none runs or no rate is known yet
  } prestage;
  // Object-store requests by kind of I/O ("guest", "prestage", "hydrate", "other"); empty
  // for a repository in a directory.
  struct Requests {
    uint64_t requests = 0, gets = 0, bytes_in = 0, bytes_out = 0, retries = 0, failures = 0;
    double p50_ms = 0, p90_ms = 0, p99_ms = 0;
  };
  std::map<std::string, Requests> requests;
  struct Metadata {  // the local copies of repository metadata objects
    uint64_t hits = 0, misses = 0, dropped = 0;
  } metadata;
  uint64_t namespace_nodes = 0;       // "namespace": {"nodes": n}
  std::map<std::string, int64_t> expiry;  // "vm@id" -> deadline (unix s) of its policy
  std::optional<ExportInfo> export_;  // "export": null when not exported
};

struct UnexportReply {
  bool was_exported = false;
};

struct PrestageReply {
  std::string backup, profile;  // the copy, and the profile it was staged from
  uint64_t profile_chunks = 0, total_chunks = 0, already_cached = 0, fetched = 0, failed = 0,
           bytes_fetched = 0, missing_files = 0;
  double seconds = 0;
};

struct DiscardReply {
  std::string backup;
};

struct ChangesReply {
  std::string backup;       // the copy, resolved ("vm@id")
  uint64_t generation = 0;  // changes so far: a second request tells whether it changed since
  struct File {
    std::string path;  // bytes (base/json_bytes.h on the wire)
    uint64_t size = 0;
    int64_t base = -1;  // index into the copy's manifest files; -1: none
    uint64_t base_size = 0, base_limit = 0;
    std::vector<std::pair<uint64_t, uint64_t>> written;  // [start, end) byte ranges
  };
  std::vector<File> files;
};

struct ExpireReply {
  std::string backup;
  int64_t deadline = 0;  // unix seconds; 0: no policy
};

nlohmann::json Encode(const ExportInfo& r);
nlohmann::json Encode(const MountStats& r);
nlohmann::json Encode(const UnexportReply& r);
nlohmann::json Encode(const PrestageReply& r);
nlohmann::json Encode(const DiscardReply& r);
nlohmann::json Encode(const ExpireReply& r);
nlohmann::json Encode(const ChangesReply& r);
nlohmann::json EncodeError(const Status& s);

// Each decoder first turns an error reply into its Status (code kept).
template <typename Reply>
Result<Reply> DecodeReply(const nlohmann::json& j);
template <> Result<ExportInfo> DecodeReply<ExportInfo>(const nlohmann::json& j);
template <> Result<MountStats> DecodeReply<MountStats>(const nlohmann::json& j);
template <> Result<UnexportReply> DecodeReply<UnexportReply>(const nlohmann::json& j);
template <> Result<PrestageReply> DecodeReply<PrestageReply>(const nlohmann::json& j);
template <> Result<DiscardReply> DecodeReply<DiscardReply>(const nlohmann::json& j);
template <> Result<ExpireReply> DecodeReply<ExpireReply>(const nlohmann::json& j);
template <> Result<ChangesReply> DecodeReply<ChangesReply>(const nlohmann::json& j);

}  // namespace lm::control

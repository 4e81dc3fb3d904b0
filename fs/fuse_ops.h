// The libfuse low-level binding: session setup, the callbacks, the multithreaded loop.
#pragma once

#include <functional>
#include <string>

#include "fs/live_fs.h"

struct fuse_session;

namespace lm {

struct FuseOptions {
  std::string mountpoint;
  bool allow_other = false;  // always together with default_permissions
  bool debug = false;
  unsigned max_threads = 16;
  std::string control_name;  // answered for the xattr user.livemount.control on the root
};

class FuseMount {
 public:
  // Creates the session and mounts it. Nothing is served until Run().
  static Result<std::unique_ptr<FuseMount>> Mount(LiveFs& fs, const FuseOptions& options);
  ~FuseMount();
  // Serves requests until unmounted or Exit(); SIGINT, SIGTERM and SIGHUP end it too.
  Status Run();
  void Exit();
  // Exits the loop and unmounts now, from another thread (the start failed after mounting).
  void Abort();
  // Makes the kernel forget a cached name (after a discard changed what it names).
  void InvalidateEntry(Ino parent, const std::string& name);

 private:
  FuseMount() = default;
  struct fuse_session* se_ = nullptr;
  void* ctx_ = nullptr;  // the callbacks' Context, freed after the session
  unsigned max_threads_ = 16;
  bool mounted_ = false;
  bool signals_ = false;
};

}  // namespace lm

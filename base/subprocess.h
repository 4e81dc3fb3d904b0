// Running other programs (fusermount3, rpcbind, nfs-ganesha) and waiting for things to
// happen: the one place that forks, execs and polls. No shell is ever involved: argv goes
// to exec as it is.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"

namespace lm {

struct SpawnOptions {
  bool search_path = false;       // look argv[0] up in PATH (execvp) instead of taking it as a path
  bool capture_stderr = false;    // else stderr goes to /dev/null like stdin and stdout
  bool new_process_group = false; // a terminal's Ctrl-C then reaches only the caller
  // Sent to the child when the thread that spawned it ends (PR_SET_PDEATHSIG): a helper
  // that must not outlive the daemon that started it. 0: none.
  int death_signal = 0;
};

// A child process. Every descriptor above stderr is closed in the child (a FUSE daemon's
// /dev/fuse must close when the daemon dies, not live on in a helper).
class Subprocess {
 public:
  static Result<Subprocess> Spawn(const std::vector<std::string>& argv, const SpawnOptions& options = {});
  Subprocess(Subprocess&& o) noexcept;
  Subprocess& operator=(Subprocess&& o) = delete;
  ~Subprocess();  // waits for a child that was never waited for

  pid_t pid() const { return pid_; }
  // Waits for the child to end (after reading what it wrote to stderr, if captured) and
  // returns its wait status.
  int Wait();
  // What the child wrote to stderr (capture_stderr), complete after Wait().
  const std::string& stderr_text() const { return err_; }

 private:
  Subprocess() = default;
  pid_t pid_ = -1;
  int err_fd_ = -1;
  std::string err_;
  bool waited_ = false;
};

// Runs argv to its end: its exit code, or -1 if it could not run or died of a signal.
// `first_err_line` (optional) receives the first line it wrote to stderr.
int RunCommand(const std::vector<std::string>& argv, std::string* first_err_line = nullptr,
               bool search_path = true);

// Calls `done` every `interval` until it returns true (then true) or `timeout` has passed
// (then false). The condition is checked once more at the deadline.
bool WaitUntil(std::chrono::milliseconds timeout, std::chrono::milliseconds interval,
               const std::function<bool()>& done);

}  // namespace lm

#include "base/subprocess.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <thread>

namespace lm {

Result<Subprocess> Subprocess::Spawn(const std::vector<std::string>& argv, const SpawnOptions& o) {
  if (argv.empty()) return Status::Invalid("no program to run");
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
  args.push_back(nullptr);
  int pipefd[2] = {-1, -1};
  if (o.capture_stderr && ::pipe2(pipefd, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe");
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    if (pipefd[0] >= 0) ::close(pipefd[0]), ::close(pipefd[1]);
    return Status::FromErrno(e, "fork for " + argv[0]);
  }
  if (pid == 0) {
    if (o.death_signal) {
      ::prctl(PR_SET_PDEATHSIG, o.death_signal);
      if (::getppid() != parent) ::_exit(1);  // the parent is already gone
    }
    int null_fd = ::open("/dev/null", O_RDWR);
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    ::dup2(o.capture_stderr ? pipefd[1] : null_fd, 2);
    ::close_range(3, ~0u, 0);
    if (o.new_process_group) ::setpgid(0, 0);
    if (o.search_path) ::execvp(args[0], args.data());
    else ::execv(args[0], args.data());
    ::_exit(127);
  }
  Subprocess p;
  p.pid_ = pid;
  if (o.capture_stderr) {
    ::close(pipefd[1]);
    p.err_fd_ = pipefd[0];
  }
  return p;
}

Subprocess::Subprocess(Subprocess&& o) noexcept
    : pid_(o.pid_), err_fd_(o.err_fd_), err_(std::move(o.err_)), waited_(o.waited_) {
  o.pid_ = -1;
  o.err_fd_ = -1;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !waited_) Wait();
  if (err_fd_ >= 0) ::close(err_fd_);
}

int Subprocess::Wait() {
  if (err_fd_ >= 0) {
    char buf[512];
    ssize_t n;
    while ((n = ::read(err_fd_, buf, sizeof buf)) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      if (err_.size() < (64 << 10)) err_.append(buf, n);
    }
    ::close(err_fd_);
    err_fd_ = -1;
  }
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  waited_ = true;
  return status;
}

int RunCommand(const std::vector<std::string>& argv, std::string* first_err_line, bool search_path) {
  SpawnOptions o;
  o.search_path = search_path;
  o.capture_stderr = first_err_line != nullptr;
  auto p = Subprocess::Spawn(argv, o);
  if (!p.ok()) {
    if (first_err_line) *first_err_line = p.status().message();
    return -1;
  }
  int status = p->Wait();
  if (first_err_line) *first_err_line = p->stderr_text().substr(0, p->stderr_text().find('\n'));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool WaitUntil(std::chrono::milliseconds timeout, std::chrono::milliseconds interval,
               const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

}  // namespace lm

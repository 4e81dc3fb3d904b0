// base/subprocess.h: programs run without a shell, their exit codes and stderr come back,
// descriptors do not leak into them, and WaitUntil polls to a deadline.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "base/env.h"
#include "base/subprocess.h"

using namespace lm;

TEST_CASE("RunCommand reports exit codes and the first line of stderr", "[subprocess]") {
  std::string err;
  CHECK(RunCommand({"sh", "-c", "echo first >&2; echo second >&2; exit 3"}, &err) == 3);
  CHECK(err == "first");
  CHECK(RunCommand({"true"}) == 0);
  CHECK(RunCommand({"/no/such/program"}, &err, false) == 127);
  CHECK(RunCommand({"sh", "-c", "kill -9 $$"}) == -1);  // died of a signal
  // argv is never parsed by a shell.
  CHECK(RunCommand({"test", "a; exit 7", "=", "a; exit 7"}) == 0);
}

TEST_CASE("a child sees no descriptor of its parent above stderr", "[subprocess]") {
  int fd = ::open("/dev/null", O_RDONLY);  // not O_CLOEXEC: close_range must catch it
  REQUIRE(fd > 2);
  std::string check = "test ! -e /proc/self/fd/" + std::to_string(fd);
  CHECK(RunCommand({"sh", "-c", check}) == 0);
  ::close(fd);
}

TEST_CASE("WaitUntil returns as soon as the condition holds, and false at the deadline", "[subprocess]") {
  std::atomic<bool> flag{false};
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    flag = true;
  });
  CHECK(WaitUntil(std::chrono::seconds(10), std::chrono::milliseconds(1), [&] { return flag.load(); }));
  t.join();
  int calls = 0;
  CHECK_FALSE(WaitUntil(std::chrono::milliseconds(20), std::chrono::milliseconds(5), [&] { return ++calls < 0; }));
  CHECK(calls >= 2);  // checked again at the deadline
}

TEST_CASE("a spawned child is waited for and its stderr kept", "[subprocess]") {
  SpawnOptions o;
  o.search_path = true;
  o.capture_stderr = true;
  auto p = Subprocess::Spawn({"sh", "-c", "echo oops >&2; exit 2"}, o);
  REQUIRE(p.ok());
  CHECK(p->pid() > 0);
  int status = p->Wait();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 2);
  CHECK(p->stderr_text() == "oops\n");
  CHECK(Subprocess::Spawn({}).status().code() == Code::kInvalid);
}

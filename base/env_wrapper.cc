#include "base/env_wrapper.h"

#include <chrono>
#include <thread>

namespace lm {

Status DelayedReadEnv::PRead(int fd, void* buf, size_t n, uint64_t off, size_t* got, const std::string& path) {
  if (ms_ && path.find(part_) != std::string::npos) std::this_thread::sleep_for(std::chrono::milliseconds(ms_));
  return EnvWrapper::PRead(fd, buf, n, off, got, path);
}

}  // namespace lm

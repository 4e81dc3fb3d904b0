#include "tools/cli/progress.h"

#include <fmt/core.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>

#include "store/repository.h"

namespace lm::cli {

ProgressBar::ProgressBar(std::string label, Unit unit)
    : label_(std::move(label)), unit_(unit), enabled_(::isatty(STDERR_FILENO) == 1) {
  start_ = std::chrono::steady_clock::now();
}

void ProgressBar::Update(uint64_t done, uint64_t total, const std::string& detail) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done < total) return;
  last_ = now;
  struct winsize ws {};
  int cols = (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) ? ws.ws_col : 80;
  double secs = std::chrono::duration<double>(now - start_).count();
  double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  std::string right;
  if (unit_ == Unit::kBytes) {
    double mbs = secs > 0 ? static_cast<double>(done) / 1e6 / secs : 0;
    right = fmt::format(" {:3.0f}% {}/{} {:.0f} MB/s ", frac * 100, FormatBytes(done), FormatBytes(total), mbs);
  } else {
    double per_s = secs > 0 ? static_cast<double>(done) / secs : 0;
    right = fmt::format(" {:3.0f}% {}/{} chunks {:.0f}/s ", frac * 100, done, total, per_s);
  }
  int width = std::max(10, std::min(30, cols - static_cast<int>(label_.size()) - 60));
  int filled = static_cast<int>(frac * width);
  std::string bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
  std::string line = label_ + " " + bar + right + detail;
  if (static_cast<int>(line.size()) > cols - 1) line.resize(cols - 1);
  fmt::print(stderr, "\r{}\x1b[K", line);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Done() {
  if (enabled_ && drawn_) {
    fmt::print(stderr, "\r\x1b[K");
    std::fflush(stderr);
    drawn_ = false;
  }
}

}  // namespace lm::cli

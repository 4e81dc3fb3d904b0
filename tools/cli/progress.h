// A one-line progress bar on stderr, drawn only when stderr is a terminal and redrawn at
// most ten times a second; scripts see nothing but the final summary.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lm::cli {

class ProgressBar {
 public:
  enum class Unit { kBytes, kChunks };  // what done/total count
  explicit ProgressBar(std::string label, Unit unit = Unit::kBytes);
  ~ProgressBar() { Done(); }
  void Update(uint64_t done, uint64_t total, const std::string& detail = "");
  void Done();  // clears the line

 private:
  std::string label_;
  Unit unit_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace lm::cli

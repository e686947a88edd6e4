// Progress reporting for long work, on stderr. On a terminal: one line
// rewritten in place with count, rate and ETA. Otherwise (logs, CI): a plain
// line every `log_interval_s` seconds, so logs stay readable.
#pragma once

#include <cstdint>
#include <string>

#include "util/resources.h"

namespace openba {

// True when stderr is a terminal (a live progress line is shown there).
bool progress_is_terminal();

class Progress {
 public:
  // total == 0 means unknown (no ETA). unit names what is counted ("tokens").
  Progress(std::string label, uint64_t total, std::string unit, bool enabled = true);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(uint64_t amount);
  // Prints the final line (once); called by the destructor if not before.
  void finish();

  uint64_t done() const { return done_; }
  double elapsed_seconds() const { return clock_.seconds(); }

  // Seconds between plain log lines when stderr is not a terminal.
  static constexpr double log_interval_s = 10.0;

 private:
  void print(bool final_line);

  std::string label_;
  uint64_t total_;
  std::string unit_;
  bool enabled_;
  bool is_tty_;
  bool finished_ = false;
  uint64_t done_ = 0;
  double last_print_ = -1e9;
  Stopwatch clock_;
};

}  // namespace openba

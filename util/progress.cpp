#include "util/progress.h"

#include <unistd.h>

#include <cstdio>

#include "util/format.h"

namespace openba {

bool progress_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::string label, uint64_t total, std::string unit, bool enabled)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      enabled_(enabled),
      is_tty_(::isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() { finish(); }

void Progress::advance(uint64_t amount) {
  done_ += amount;
  if (!enabled_) return;
  const double now = clock_.seconds();
  const double interval = is_tty_ ? 0.2 : log_interval_s;
  if (now - last_print_ >= interval) {
    last_print_ = now;
    print(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) print(true);
}

void Progress::print(bool final_line) {
  const double elapsed = clock_.seconds();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const bool bytes = unit_ == "bytes";
  auto amount = [&](uint64_t n) { return bytes ? human_bytes(n) : std::to_string(n); };
  char rate_text[64];
  if (bytes) {
    std::snprintf(rate_text, sizeof(rate_text), "%s/s", human_bytes(static_cast<uint64_t>(rate)).c_str());
  } else {
    std::snprintf(rate_text, sizeof(rate_text), "%.1f %s/s", rate, unit_.c_str());
  }
  std::string line = label_ + ": " + amount(done_);
  if (total_ > 0) {
    char pct[32];
    std::snprintf(pct, sizeof(pct), " (%.1f%%)", 100.0 * static_cast<double>(done_) / total_);
    line += "/" + amount(total_) + (bytes ? "" : " " + unit_) + pct;
  } else if (!bytes) {
    line += " " + unit_;
  }
  line += ", " + std::string(rate_text);
  if (final_line) {
    line += ", took " + human_duration(elapsed);
  } else if (total_ > 0 && rate > 0 && done_ < total_) {
    line += ", ETA " + human_duration(static_cast<double>(total_ - done_) / rate);
  }
  if (is_tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace openba

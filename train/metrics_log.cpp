#include "train/metrics_log.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "util/error.h"
#include "util/fs.h"
#include "util/tfevents.h"

namespace openba {
namespace fs = std::filesystem;

MetricsLog::MetricsLog(const std::string& out_dir, bool tensorboard, int64_t resume_step, bool enabled)
    : enabled_(enabled), metrics_path_((fs::path(out_dir) / "metrics.jsonl").string()) {
  if (!enabled) return;
  if (resume_step >= 0 && fs::exists(metrics_path_)) {
    // Keep the lines of steps the resumed checkpoint already covers.
    std::istringstream in(read_text_file(metrics_path_));
    std::string kept, line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      try {
        if (nlohmann::json::parse(line).value("step", int64_t{0}) > resume_step) continue;
      } catch (const nlohmann::json::exception&) {
        continue;  // a line cut short by the kill
      }
      kept += line + "\n";
    }
    StagingDir::write_file_atomically(metrics_path_, kept);
  }
  metrics_.open(metrics_path_, std::ios::app);
  if (!metrics_) throw Error(metrics_path_ + ": cannot open for writing");
  const std::string log_path = (fs::path(out_dir) / "train.log").string();
  log_.open(log_path, std::ios::app);
  if (!log_) throw Error(log_path + ": cannot open for writing");
  if (tensorboard) tensorboard_ = std::make_unique<TensorBoardWriter>((fs::path(out_dir) / "tensorboard").string());
}

MetricsLog::~MetricsLog() = default;

void MetricsLog::add_scalars(const std::string& prefix, const nlohmann::ordered_json& value, int64_t step,
                             double wall) {
  if (value.is_number()) {
    tensorboard_->add_scalar(prefix, value.get<double>(), step, wall);
  } else if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      add_scalars(prefix.empty() ? it.key() : prefix + "/" + it.key(), it.value(), step, wall);
    }
  }
}

void MetricsLog::record(int64_t step, const nlohmann::ordered_json& values) {
  if (!enabled_) return;
  nlohmann::ordered_json line;
  line["step"] = step;
  for (auto it = values.begin(); it != values.end(); ++it) line[it.key()] = it.value();
  metrics_ << line.dump() << "\n";
  metrics_.flush();
  if (tensorboard_) {
    const double wall = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    for (auto it = values.begin(); it != values.end(); ++it) add_scalars(it.key(), it.value(), step, wall);
  }
}

void MetricsLog::line(const std::string& text) {
  if (!enabled_) return;
  std::fprintf(stderr, "%s\n", text.c_str());
  log_ << text << "\n";
  log_.flush();
}

void MetricsLog::flush() {
  if (!enabled_) return;
  metrics_.flush();
  log_.flush();
  if (tensorboard_) tensorboard_->flush();
}

}  // namespace openba

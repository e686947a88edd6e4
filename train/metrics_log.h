// Where training reports go: metrics.jsonl (one JSON object per logged
// step), TensorBoard event files (every numeric value as a scalar, nested
// keys joined with '/'), and train.log (the plain log lines, also on stderr).
// Resuming at step S drops metrics.jsonl lines past S, so the file reads as
// one uninterrupted run.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace openba {

class TensorBoardWriter;

class MetricsLog {
 public:
  // resume_step < 0: a fresh run (files must not exist yet... they are created).
  // enabled = false (ranks other than 0): writes nothing anywhere.
  MetricsLog(const std::string& out_dir, bool tensorboard, int64_t resume_step, bool enabled = true);
  ~MetricsLog();

  void record(int64_t step, const nlohmann::ordered_json& values);
  void line(const std::string& text);
  void flush();

 private:
  void add_scalars(const std::string& prefix, const nlohmann::ordered_json& value, int64_t step, double wall);

  bool enabled_ = true;
  std::string metrics_path_;
  std::ofstream metrics_;
  std::ofstream log_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
};

}  // namespace openba

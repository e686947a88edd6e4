#include "pipeline/measure.h"

#include <torch/torch.h>

#include <cstdio>

#include "runtime/checkpoint.h"
#include "runtime/model_io.h"
#include "runtime/task_scoring.h"

namespace openba {

nlohmann::ordered_json measure_checkpoint(const std::string& dir, const PipelineMeasure& measure,
                                          int64_t task_vocab_size, bool quiet, const std::string& label) {
  const Checkpoint checkpoint = Checkpoint::open(dir);
  const torch::Device device(measure.device);
  Seq2SeqModel model = load_model(checkpoint, device);
  model->eval();
  nlohmann::ordered_json out;
  out["options"] = measure.spec();
  out["speed"] = nullptr;
  if (measure.speed) {
    out["speed"] = measure_model_speed(*model, measure.device, measure.speed_options, [&](const std::string& line) {
      if (!quiet) std::printf("   %s speed: %s\n", label.c_str(), line.c_str());
    });
  }
  auto tasks = nlohmann::ordered_json::array();
  for (const auto& file : measure.tasks) {
    nlohmann::ordered_json t;
    t["file"] = file;
    if (model->config.vocab_size != task_vocab_size) {
      t["skipped"] = "the vocabulary has " + std::to_string(model->config.vocab_size) + " rows, the task's ids are the input model's " +
                     std::to_string(task_vocab_size);
      tasks.push_back(t);
      continue;
    }
    const auto items = read_task_file(file, task_vocab_size);
    const auto scores = score_task_items(*model, items, device, 16, 16384);
    const nlohmann::ordered_json summary = task_summary(items, scores);
    for (const auto& [key, value] : summary.items()) {
      if (key != "summary") t[key] = value;
    }
    if (!quiet) {
      std::printf("   %s task %s: accuracy %.4f (chance %.4f)\n", label.c_str(), file.c_str(), t["accuracy"].get<double>(),
                  t["chance"].get<double>());
    }
    tasks.push_back(t);
  }
  out["tasks"] = tasks;
  std::fflush(stdout);
  return out;
}

}  // namespace openba

// The pipeline's `measure:` (pipeline_config.h): the measured speed
// (runtime/model_speed.h) and task accuracy (runtime/task_scoring.h) of a
// checkpoint, for the input model and every step's output, so that the
// report shows a measured speedup beside each parameter ratio.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "pipeline/pipeline_config.h"

namespace openba {

// {"options": measure.spec(), "speed": {...} | null, "tasks": [{"file",
// "items", "accuracy", "accuracy_stderr", "accuracy_mean_token",
// "accuracy_mean_token_stderr", "chance"} | {"file", "skipped": why}]}.
// Tasks are in the input model's ids: a checkpoint whose vocabulary is not
// task_vocab_size rows (a vocabulary step's output) skips them, saying so.
// The model is loaded whole on measure.device.
nlohmann::ordered_json measure_checkpoint(const std::string& dir, const PipelineMeasure& measure,
                                          int64_t task_vocab_size, bool quiet, const std::string& label);

}  // namespace openba

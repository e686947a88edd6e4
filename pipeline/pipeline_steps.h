// Running one step of a pipeline: a compression stage in this process, a
// pretrain step in this process or through its launcher line, an eval step.
// Each returns what the run's report needs about it.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "compress/data.h"
#include "compress/heldout.h"
#include "pipeline/pipeline.h"
#include "pipeline/pipeline_config.h"

namespace openba {

// The run's held-out examples (data.heldout drawn as every compression step
// draws them: the same examples throughout), built once.
class HeldoutSet {
 public:
  HeldoutSet(const PipelineConfig& pipeline, bool quiet) : pipeline_(pipeline), quiet_(quiet) {}
  bool enabled() const { return !pipeline_.data.heldout.empty(); }
  // Held-out loss of a checkpoint directory (in the input model's token ids).
  HeldoutLoss evaluate(const std::string& checkpoint_dir, const std::string& label);
  const ExampleSet& examples();
  nlohmann::ordered_json describe();

 private:
  const PipelineConfig& pipeline_;
  bool quiet_;
  std::unique_ptr<ExampleSet> set_;
};

struct StepOutcome {
  std::string output;         // the checkpoint the next step reads
  std::string report;         // the step's report.json
  nlohmann::ordered_json heldout_before, heldout_after;  // {"loss", "by_denoiser", ...} or null
  std::string summary;        // one line: what the step did
  nlohmann::ordered_json baseline;  // neuron steps with baseline: random
  nlohmann::ordered_json train;     // pretrain steps
};

struct StepInput {
  std::string dir;                       // the checkpoint the step reads
  nlohmann::ordered_json heldout;        // its held-out loss when known (null otherwise)
};

StepOutcome run_compress_step(const PipelineRun& run, const PipelineStep& step, const StepInput& input);
// resume: the step was started under the same options; continue its run directory.
StepOutcome run_pretrain_step(const PipelineRun& run, const PipelineConfig& pipeline, const PipelineStep& step,
                              const StepInput& input, bool resume, HeldoutSet& heldout);
StepOutcome run_eval_step(const PipelineRun& run, const PipelineStep& step, const StepInput& input, HeldoutSet& heldout);

}  // namespace openba

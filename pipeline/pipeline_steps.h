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
  nlohmann::ordered_json baseline;  // neuron steps with baseline: random; pretrain steps with baseline: ul2
  nlohmann::ordered_json train;     // pretrain steps
};

struct StepInput {
  std::string dir;                       // the checkpoint the step reads
  nlohmann::ordered_json heldout;        // its held-out loss when known (null otherwise)
  std::string teacher;                   // pretrain steps that distill: the teacher's directory
};

// One training run of a pipeline (a pretrain step, its ul2 baseline, a
// scratch baseline run) into `dir`, in this process or through `launcher`
// / `nproc` (an openba-pretrain command line). `resume` continues from
// dir's newest checkpoint, and a run whose final model is there already is
// not run again; without it what an earlier run left in `dir` is removed
// first. Errors name `label` and dir/train.log.
struct TrainingRun {
  std::string final_dir;
  std::string launcher = "in process";  // or the command line it ran
  double seconds = 0;                   // 0 when it had finished before
};
TrainingRun train_into(const PipelineRun& run, const ConfigNode& config, const std::string& dir,
                       const std::string& launcher, int nproc, bool resume, const std::string& label);

// What a run directory's metrics.jsonl says about its training.
struct TrainLog {
  int64_t tokens = 0;  // training tokens at the last logged step
  double first_loss = 0, last_loss = 0;
  int points = 0;
};
TrainLog read_train_log(const std::string& metrics);

StepOutcome run_compress_step(const PipelineRun& run, const PipelineStep& step, const StepInput& input);
// resume: the step was started under the same options; continue its run directory.
StepOutcome run_pretrain_step(const PipelineRun& run, const PipelineConfig& pipeline, const PipelineStep& step,
                              const StepInput& input, bool resume, HeldoutSet& heldout);
StepOutcome run_eval_step(const PipelineRun& run, const PipelineStep& step, const StepInput& input, HeldoutSet& heldout);

}  // namespace openba

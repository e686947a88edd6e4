// The from-scratch baseline of a pipeline run (`baselines: scratch:` in the
// pipeline file): would training the compressed shape from random
// initialization on the same tokens have done as well?
//
// The compared model is the output of the last pretrain step (the last
// recovered model; a vocabulary step after it rewrites the ids the held-out
// set is encoded in, so its output is not compared). That shape is
// initialized randomly (megatron init, `seed`) into
// RUN_DIR/baseline-scratch/init and trained once per swept learning rate
// (min_lr = lr / 10; the rest of the training settings from
// defaults.pretrain and the baseline's own config/set) for as many examples
// as all recovery steps together (the pretrain steps after the first pruning
// step): with the same budgets that is the same tokens, both counted from
// the runs' metrics. Every run draws the run's training data and is measured
// on the run's held-out set. With extend > 1 the best learning rate is
// trained again on extend x the examples, evaluated along the way: where
// its held-out curve first reaches the compressed model's loss (linear
// between evaluations) is the "tokens to match".
//
// Runs go to RUN_DIR/baseline-scratch/lr-<lr>/ and .../extended/, each
// recorded in pipeline-state.json when it starts and when it is done: done
// runs are skipped, an interrupted one resumes from its last checkpoint.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline/pipeline.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/run_state.h"

namespace openba {

class HeldoutSet;

struct ScratchPlan {
  size_t compared = 0;            // index of the compared step (the last pretrain step)
  std::vector<size_t> recovery;   // indices of the recovery steps
  int64_t recovery_examples = 0;  // their steps x global batch, summed
  int64_t global_batch = 0;       // of the scratch runs
  int64_t steps = 0;              // scratch optimizer steps for recovery_examples (rounded up)
};

// Checks the baseline against the steps (there are recovery steps; every
// swept configuration is valid) and sizes it. Error naming the pipeline
// file's baselines: line.
ScratchPlan plan_scratch(const PipelineConfig& pipeline);

// Runs the baseline's runs that are not done, after every step is done
// (`last_chain` is the last step's chain); records them in `state`, saved
// to `state_path` as each starts and ends.
void run_scratch_baseline(const PipelineRun& run, const PipelineConfig& pipeline, const std::string& last_chain,
                          RunState& state, const std::string& state_path, HeldoutSet& heldout);

// report.json's "baselines": {"scratch": ...} from the state's records and
// the report's step entries (`steps`), the curves and the tokens to match
// recomputed from the metrics files; null when the pipeline has no
// baseline. Field list in report/report_html.h.
nlohmann::ordered_json baselines_report(const PipelineConfig& pipeline, const nlohmann::ordered_json& steps,
                                        const RunState& state, const std::string& run_dir);

}  // namespace openba

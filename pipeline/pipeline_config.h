// A pipeline file (configs/pipelines/*.yaml): the model a run starts from,
// the data every step shares, per-kind defaults and the ordered steps.
//
//   name: demo                       # identifies the run in RUN_DIR
//   description: ...
//   model: runs/demo/base            # the checkpoint directory the run starts from
//   data:                            # shared by every step
//     train: SHARDS                  # pretrain data.train, calibration, vocabulary counts
//     heldout: SHARDS                # every step's held-out loss (the same examples throughout)
//     heldout_per_denoiser: 16       # held-out examples per UL2 denoiser
//     encoder_tokens: 570            # UL2 example budgets (held-out, calibration, pretrain ul2.*)
//     decoder_tokens: 381
//     seed: 0                        # calibration draws; pretrain step i uses data.seed = seed + i
//     heldout_seed: 0                # which held-out examples (default: seed); every step and every
//                                    # evaluation inside a pretrain step (eval.seed) uses this one set
//   defaults:
//     compress: {calib-samples: 1024}             # any openba-compress option key
//     pretrain: {config: FILE, set: {...}, launcher: "...", nproc: N}
//   steps:
//     - kind: layer | neuron | vocab | pretrain | eval
//       name: NAME                   # optional; the directory is NN-NAME (default NN-kind)
//       ...                          # the kind's options
//   measure:                         # optional: measured of the input model and every step's output
//     speed: {batches: [1, 8], new_tokens: 32, input_length: 64, encoder_batch: 8, repeats: 1}
//                                    # openba-bench-model's measurement (runtime/model_speed.h); {} = its defaults
//     tasks: [TASK.jsonl, ...]       # multiple-choice tasks, ids form in the input model's ids (openba-eval --task)
//     device: cpu                    # where the models are loaded (whole) and measured
//   baselines:                       # optional: what the compression is compared with
//     scratch:                       # the last recovered shape from random init (scratch_baseline.h)
//       lr: [1.0e-3, 2.0e-3]         # learning rates swept (min_lr = lr / 10); the best is reported
//       extend: 3                    # the best lr again to 3x the tokens (tokens to match); 1 = off
//       seed: 0                      # init seed
//       config: FILE                 # training config (default: defaults.pretrain's)
//       set: {...}                   # over defaults.pretrain's set
//
// Compression steps take openba-compress's option keys (`keep-decoder-layers:
// 8`, `ffn: 224`, `score: activation`, ...), plus `baseline: random` on a
// neuron step (the same shape with random scores, evaluated beside it).
// Pretrain steps: `config:` a training config (configs/train/*.yaml) and
// `set:` keys over it (dotted or nested, as openba-pretrain --set), and
// optionally `launcher:` (a command line that starts openba-pretrain on
// many processes, e.g. "torchrun --nproc-per-node 8 --no-python") or
// `nproc: N` (openba-pretrain's own launcher); `distill: {teacher: input |
// STEP | DIR, alpha, temperature, top_k}` trains with distillation from the
// run's input model, an earlier step's output (number, directory or name)
// or a checkpoint directory; with it, `baseline: ul2` also trains the same
// step without distillation (same data, same tokens) into NN-name-ul2.
// Eval steps take no options. Held-out options (eval.seed,
// eval.examples_per_denoiser, data.heldout) are the run's, from data:; a
// training config that changes ul2.denoisers evaluates on its own
// denoisers inside the step (D-UL2 needs them), while the report measures
// OpenBA's seven.
//
// Unknown keys anywhere are errors naming their line. Relative paths are
// taken from the working directory (as in configs/train).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compress/compress.h"
#include "runtime/model_speed.h"
#include "report/step_kind.h"
#include "util/config_node.h"

namespace openba {

struct PipelineData {
  std::string train, heldout;
  int64_t heldout_per_denoiser = 16;
  int64_t encoder_tokens = 570, decoder_tokens = 381;
  uint64_t seed = 0;
  uint64_t heldout_seed = 0;
};

// A pretrain step's `distill:`.
struct StepDistill {
  std::string teacher;     // as written: "input", an earlier step, or a checkpoint directory
  int teacher_step = -1;   // 0-based index of the earlier step it names; -1 = input model or directory
  std::vector<ConfigNode::Override> options;  // distill.alpha / temperature / top_k, with their lines
  std::string where;       // "file:line" of the distill: key
  bool enabled() const { return !teacher.empty(); }
};

// `baselines: scratch:` (pipeline/scratch_baseline.h runs it).
struct ScratchBaseline {
  std::vector<double> lrs;  // swept learning rates
  int64_t extend = 1;       // the best lr again to extend x the tokens (1 = not)
  uint64_t seed = 0;        // init seed
  std::string train_config;
  std::vector<ConfigNode::Override> train_set;
  std::string launcher;
  int nproc = 0;
  std::string where;
  nlohmann::ordered_json spec;  // what its results depend on besides the steps (hashed)
  bool enabled() const { return !lrs.empty(); }
};

struct PipelineStep {
  int index = 0;      // 1-based
  std::string id;     // "03-layer": the step's directory under RUN_DIR
  std::string name;   // `name:` or the kind
  StepKind kind = StepKind::kEval;
  std::string where;  // "file:line" of the step, for errors
  // layer / neuron / vocab: everything but model and out.
  CompressOptions compress;
  std::string baseline;  // neuron: "random" also runs the random-score baseline; pretrain: "ul2" (without distillation)
  // pretrain
  std::string train_config;                     // base training config ("" = built-in defaults)
  std::vector<ConfigNode::Override> train_set;  // the step's `set:` (and the defaults'), with their lines
  std::string launcher;                         // "" = in this process
  int nproc = 0;                                // > 0: openba-pretrain --nproc N
  StepDistill distill;
  // What the step's result depends on (hashed into the run's chain; shown
  // when a RUN_DIR was made with other options).
  nlohmann::ordered_json spec;
};

// `measure:` (pipeline/measure.h).
struct PipelineMeasure {
  bool speed = false;
  SpeedOptions speed_options;
  std::vector<std::string> tasks;
  std::string device = "cpu";
  bool enabled() const { return speed || !tasks.empty(); }
  // What a recorded measurement was made with: one whose options differ
  // (or a run that had none) is measured again, without redoing any step.
  nlohmann::ordered_json spec() const;
};

struct PipelineConfig {
  std::string file, sha256;  // the pipeline file and the SHA-256 of its text
  std::string name, description;
  std::string model;
  PipelineData data;
  CompressOptions compress_defaults;  // data options and defaults.compress (batch limits of held-out evaluation)
  std::vector<PipelineStep> steps;
  ScratchBaseline scratch;
  PipelineMeasure measure;
};

// Parses and checks the file (kinds, keys, types, step names); shapes and
// data are checked against the model by plan_pipeline (pipeline_plan.h).
PipelineConfig load_pipeline(const std::string& path);

// The step a --from/--until argument names: its number ("3"), its
// directory ("03-layer") or its name. Error listing the steps otherwise.
const PipelineStep& find_step(const PipelineConfig& config, const std::string& which, const std::string& flag);

}  // namespace openba

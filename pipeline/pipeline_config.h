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
//     seed: 0                        # held-out/calibration draws; pretrain step i uses data.seed = seed + i
//   defaults:
//     compress: {calib-samples: 1024}             # any openba-compress option key
//     pretrain: {config: FILE, set: {...}, launcher: "...", nproc: N}
//   steps:
//     - kind: layer | neuron | vocab | pretrain | eval
//       name: NAME                   # optional; the directory is NN-NAME (default NN-kind)
//       ...                          # the kind's options
//
// Compression steps take openba-compress's option keys (`keep-decoder-layers:
// 8`, `ffn: 224`, `score: activation`, ...), plus `baseline: random` on a
// neuron step (the same shape with random scores, evaluated beside it).
// Pretrain steps: `config:` a training config (configs/train/*.yaml) and
// `set:` keys over it (dotted or nested, as openba-pretrain --set), and
// optionally `launcher:` (a command line that starts openba-pretrain on
// many processes, e.g. "torchrun --nproc-per-node 8 --no-python") or
// `nproc: N` (openba-pretrain's own launcher). Eval steps take no options.
//
// Unknown keys anywhere are errors naming their line. Relative paths are
// taken from the working directory (as in configs/train).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compress/compress.h"
#include "util/config_node.h"

namespace openba {

struct PipelineData {
  std::string train, heldout;
  int64_t heldout_per_denoiser = 16;
  int64_t encoder_tokens = 570, decoder_tokens = 381;
  uint64_t seed = 0;
};

struct PipelineStep {
  int index = 0;      // 1-based
  std::string id;     // "03-layer": the step's directory under RUN_DIR
  std::string name;   // `name:` or the kind
  std::string kind;   // layer | neuron | vocab | pretrain | eval
  std::string where;  // "file:line" of the step, for errors
  // layer / neuron / vocab: everything but model and out.
  CompressOptions compress;
  std::string baseline;  // neuron: "random" also runs the random-score baseline
  // pretrain
  std::string train_config;                     // base training config ("" = built-in defaults)
  std::vector<ConfigNode::Override> train_set;  // the step's `set:` (and the defaults'), with their lines
  std::string launcher;                         // "" = in this process
  int nproc = 0;                                // > 0: openba-pretrain --nproc N
  // What the step's result depends on (hashed into the run's chain; shown
  // when a RUN_DIR was made with other options).
  nlohmann::ordered_json spec;
};

struct PipelineConfig {
  std::string file, sha256;  // the pipeline file and the SHA-256 of its text
  std::string name, description;
  std::string model;
  PipelineData data;
  CompressOptions compress_defaults;  // data options and defaults.compress (batch limits of held-out evaluation)
  std::vector<PipelineStep> steps;
};

// Parses and checks the file (kinds, keys, types, step names); shapes and
// data are checked against the model by plan_pipeline (pipeline_plan.h).
PipelineConfig load_pipeline(const std::string& path);

// The step a --from/--until argument names: its number ("3"), its
// directory ("03-layer") or its name. Error listing the steps otherwise.
const PipelineStep& find_step(const PipelineConfig& config, const std::string& which, const std::string& flag);

}  // namespace openba

// Everything about a pipeline that can be checked before a step runs: each
// step's options against the shape the steps before it leave (layer counts,
// widths, vocabulary), its data against the model's tokenizer, and every
// pretrain step's training configuration (unknown keys with their line in
// the pipeline file, batches that do not divide).
#pragma once

#include <string>
#include <vector>

#include "arch/openba/config.h"
#include "pipeline/pipeline_config.h"
#include "train/train_config.h"

namespace openba {

// The model shape after each step (index i: after steps[i]); Error naming
// the step's line at the first step that cannot follow.
std::vector<ModelConfig> plan_pipeline(const PipelineConfig& pipeline);

// A pretrain step's training configuration: its `config:` file (or the
// built-in defaults), then what the pipeline sets (model.checkpoint =
// `input`, data.train / data.heldout / data.seed, the held-out set as
// eval.seed / eval.examples_per_denoiser and the ul2 budgets from the data:
// section), then the step's `set:` keys, which win; with `teacher` (the
// resolved directory of the step's distill.teacher) its distill section.
ConfigNode pretrain_config_node(const PipelineConfig& pipeline, const PipelineStep& step, const std::string& input,
                                const std::string& teacher = "");
TrainConfig pretrain_config(const PipelineConfig& pipeline, const PipelineStep& step, const std::string& input,
                            const std::string& teacher = "");

// The settings every training run of a pipeline shares (pretrain steps and
// baselines): model.checkpoint = `input`, the data: section's shards,
// held-out set and budgets, data.seed = `data_seed`.
std::vector<ConfigNode::Override> pipeline_training_overrides(const PipelineConfig& pipeline, const std::string& source,
                                                              const std::string& input, uint64_t data_seed);

}  // namespace openba

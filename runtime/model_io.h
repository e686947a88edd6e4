// Moving whole models between checkpoint directories and memory.
#pragma once

#include <string>
#include <vector>

#include "runtime/checkpoint.h"
#include "runtime/checkpoint_writer.h"
#include "arch/seq2seq_model.h"

namespace openba {

// Builds the model described by the checkpoint and copies every tensor in,
// converted to `compute_dtype` on `device`. lm_head stays tied to the
// embedding unless the checkpoint stores different values for it.
Seq2SeqModel load_model(const Checkpoint& checkpoint, const torch::Device& device = torch::kCPU,
                       torch::ScalarType compute_dtype = torch::kFloat);

// Plans and writes every tensor of the model into `writer` (which the
// caller commits, possibly after adding files of its own).
void write_model_tensors(CheckpointWriter& writer, Seq2SeqModelImpl& model);

// Writes the model as a checkpoint directory with weights in `storage_dtype`
// (both shared_embedding.weight and lm_head.weight are written, as in the
// released files). `extra_files` (tokenizer files) are copied in.
std::string save_model(Seq2SeqModelImpl& model, const std::string& out_dir, DType storage_dtype,
                       const WriterOptions& options,
                       const std::vector<std::string>& extra_files = {});

}  // namespace openba

#include "runtime/model_io.h"

#include <torch/torch.h>

#include "arch/openba/layout.h"
#include "util/error.h"

namespace openba {

Seq2SeqModel load_model(const Checkpoint& checkpoint, const torch::Device& device,
                       torch::ScalarType compute_dtype) {
  Seq2SeqModel model = make_model(checkpoint.config());
  model->to(device, compute_dtype);
  if (!checkpoint.lm_head_is_tied() && model->lm_head_tied()) model->untie_lm_head();
  fill_parameters(*model, [&](const TensorSpec& spec) { return checkpoint.tensor(spec.name); });
  return model;
}

void write_model_tensors(CheckpointWriter& writer, Seq2SeqModelImpl& model) {
  std::vector<PlannedTensor> plan;
  const auto specs = openba_tensor_specs(model.config);
  for (const TensorSpec& spec : specs) plan.push_back({spec.name, spec.shape});
  writer.plan(plan);
  auto params = model.named_parameters(true);
  for (const TensorSpec& spec : specs) {
    torch::Tensor* param = params.find(spec.name);
    if (!param) throw Error("model has no parameter '" + spec.name + "'");
    writer.write(spec.name, *param);
  }
}

std::string save_model(Seq2SeqModelImpl& model, const std::string& out_dir, DType storage_dtype,
                       const WriterOptions& options, const std::vector<std::string>& extra_files) {
  ModelConfig config = model.config;
  config.dtype = storage_dtype;
  WriterOptions with_tie = options;
  if (model.lm_head_tied()) with_tie.metadata[kTiedMetadataKey] = "tied";
  CheckpointWriter writer(out_dir, config, with_tie);
  write_model_tensors(writer, model);
  for (const std::string& file : extra_files) writer.copy_file(file);
  return writer.commit();
}

}  // namespace openba

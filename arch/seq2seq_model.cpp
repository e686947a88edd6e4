#include "arch/seq2seq_model.h"

#include <torch/torch.h>

#include <cmath>
#include <set>

#include "arch/block_checkpoint.h"
#include "util/error.h"

namespace openba {

torch::Tensor shift_right(const torch::Tensor& labels, int64_t decoder_start_token_id,
                          int64_t pad_token_id) {
  auto shifted = torch::empty_like(labels);
  shifted.select(1, 0).fill_(decoder_start_token_id);
  if (labels.size(1) > 1) {
    shifted.narrow(1, 1, labels.size(1) - 1).copy_(labels.narrow(1, 0, labels.size(1) - 1));
  }
  return shifted.masked_fill_(shifted == -100, pad_token_id);
}

torch::Tensor Seq2SeqModelImpl::encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  return encode(select_op_backend(embedding_weight()), input_ids, attention_mask);
}

torch::Tensor Seq2SeqModelImpl::decode(const torch::Tensor& decoder_input_ids,
                                       const torch::Tensor& decoder_attention_mask,
                                       const torch::Tensor& encoder_states,
                                       const torch::Tensor& encoder_attention_mask) {
  return decode(select_op_backend(embedding_weight()), decoder_input_ids, decoder_attention_mask, encoder_states,
                encoder_attention_mask);
}

torch::Tensor Seq2SeqModelImpl::project(const torch::Tensor& decoder_states) {
  return project(select_op_backend(decoder_states), decoder_states);
}

torch::Tensor Seq2SeqModelImpl::forward(const Seq2SeqBatch& batch) {
  const OpBackend& ops = select_op_backend(embedding_weight());
  auto enc = encode(ops, batch.input_ids, batch.encoder_mask());
  auto dec = decode(ops, batch.decoder_input_ids, batch.decoder_mask(), enc, batch.encoder_mask());
  return project(ops, dec);
}

torch::Tensor Seq2SeqModelImpl::run_block(const OpBackend& ops, Seq2SeqBlockImpl& block, const torch::Tensor& x,
                                          const StackInputs& in) {
  if (activation_checkpointing && is_training() && torch::GradMode::is_enabled()) {
    return checkpointed_block_forward(ops, block, x, in);
  }
  return block.forward(ops, x, in);
}

torch::Tensor project_to_vocabulary(const OpBackend& ops, const ModelConfig& config, const torch::Tensor& states,
                                    const torch::Tensor& weight, const torch::Tensor& bias) {
  auto h = states;
  if (config.tie_word_embeddings) h = h * std::pow(static_cast<double>(config.d_model), -0.5);
  return ops.linear(h, weight, bias).to(torch::kFloat);
}

void set_activation_checkpointing(Seq2SeqModelImpl& model, bool enabled) { model.set_activation_checkpointing(enabled); }

void set_dropout(Seq2SeqModelImpl& model, double probability) { model.set_dropout(probability); }

void fill_parameters(Seq2SeqModelImpl& model, const std::function<torch::Tensor(const TensorSpec&)>& source) {
  torch::NoGradGuard no_grad;
  auto params = model.named_parameters(true);
  for (const TensorSpec& spec : openba_tensor_specs(model.config)) {
    if (spec.name == kLmHeadWeightName && model.lm_head_tied()) continue;
    torch::Tensor* param = params.find(spec.name);
    if (!param) throw Error("model has no parameter '" + spec.name + "'");
    param->copy_(source(spec));
  }
}

std::vector<std::pair<std::string, torch::Tensor>> unique_named_parameters(Seq2SeqModelImpl& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  std::set<const void*> seen;
  for (const auto& item : model.named_parameters(true)) {
    if (seen.insert(item.value().unsafeGetTensorImpl()).second) out.emplace_back(item.key(), item.value());
  }
  return out;
}

}  // namespace openba

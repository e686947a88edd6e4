// The one place that maps a config's family to its module tree: models,
// blocks, stack inputs and final norms for the out-of-core runner.
#include "arch/openba/openba_model.h"
#include "arch/seq2seq_model.h"
#include "arch/t5/t5_model.h"

namespace openba {

Seq2SeqModel make_model(const ModelConfig& config) {
  switch (config.family) {
    case ModelFamily::kOpenBA: return std::make_shared<OpenBAModelImpl>(config);
    case ModelFamily::kT5: return std::make_shared<T5ModelImpl>(config);
  }
  return nullptr;
}

Seq2SeqBlock make_block(const ModelConfig& config, bool decoder, int64_t layer) {
  switch (config.family) {
    case ModelFamily::kOpenBA: return std::make_shared<BlockImpl>(config, decoder);
    case ModelFamily::kT5: return std::make_shared<T5BlockImpl>(config, decoder, /*has_relative_bias=*/layer == 0);
  }
  return nullptr;
}

StackInputs make_stack_inputs(const ModelConfig& config, bool decoder, int64_t length,
                              const torch::Tensor& attention_mask, const torch::Tensor& stack_table,
                              const torch::Device& device) {
  StackInputs in;
  in.self_mask = key_padding_mask(attention_mask, /*causal=*/decoder);
  switch (config.family) {
    case ModelFamily::kOpenBA:
      in.rope = make_rotary_tables(length, config.kv_channels, config.rope_base, device);
      break;
    case ModelFamily::kT5:
      in.position_bias = t5_position_bias(stack_table.to(device), length, length, /*bidirectional=*/!decoder, config);
      break;
  }
  return in;
}

torch::Tensor final_norm(const OpBackend& ops, const ModelConfig& config, const torch::Tensor& x,
                         const torch::Tensor& weight, const torch::Tensor& bias) {
  switch (config.family) {
    case ModelFamily::kOpenBA: return ops.layer_norm(x, weight, bias, config.layernorm_eps);
    case ModelFamily::kT5: return ops.rms_norm(x, weight, config.layernorm_eps);
  }
  return x;
}

}  // namespace openba

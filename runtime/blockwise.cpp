#include "runtime/blockwise.h"

#include <torch/torch.h>

#include "arch/openba/layout.h"
#include "util/error.h"
#include "util/progress.h"

namespace openba {

torch::Tensor BlockBatch::real_positions(bool decoder) const {
  const auto& mask = decoder ? batch.decoder_attention_mask : batch.attention_mask;
  return mask.to(torch::kFloat).unsqueeze(-1);
}

std::vector<BlockBatch> make_block_batches(const std::vector<Example>& examples, const std::vector<int>& denoisers,
                                           const ModelConfig& config, size_t max_batch, size_t max_tokens) {
  std::vector<BlockBatch> out;
  for (const auto& indices : plan_batches(examples, max_batch, max_tokens)) {
    std::vector<const Example*> members;
    BlockBatch b;
    for (size_t i : indices) {
      members.push_back(&examples[i]);
      b.denoisers.push_back(i < denoisers.size() ? denoisers[i] : -1);
    }
    b.batch = collate(members, config, torch::kCPU);
    b.enc_mask = key_padding_mask(b.batch.attention_mask);
    b.dec_mask = key_padding_mask(b.batch.decoder_attention_mask, /*causal=*/true);
    b.memory_mask = b.enc_mask;
    b.enc_rope = make_rotary_tables(b.batch.input_ids.size(1), config.kv_channels, config.rope_base, torch::kCPU);
    b.dec_rope =
        make_rotary_tables(b.batch.decoder_input_ids.size(1), config.kv_channels, config.rope_base, torch::kCPU);
    out.push_back(std::move(b));
  }
  return out;
}

BlockwiseModel::BlockwiseModel(const Checkpoint& checkpoint) : checkpoint_(checkpoint) {
  auto load = [&](const std::string& name) {
    auto t = checkpoint_.tensor(name).to(torch::kFloat).clone();
    checkpoint_.release(name);
    return t;
  };
  embedding_ = load(kEmbeddingName);
  // A tied lm_head is the embedding itself (no second copy resident).
  lm_head_weight_ = checkpoint_.lm_head_is_tied() ? embedding_ : load(kLmHeadWeightName);
  if (checkpoint_.contains(kLmHeadBiasName)) lm_head_bias_ = load(kLmHeadBiasName);
  for (int s = 0; s < 2; ++s) {
    final_w_[s] = load(final_norm_name(s == 1, "weight"));
    final_b_[s] = load(final_norm_name(s == 1, "bias"));
  }
}

Block BlockwiseModel::load_block(bool decoder, int64_t index) const {
  torch::NoGradGuard no_grad;
  Block block(config(), decoder);
  block->eval();
  for (auto& item : block->named_parameters(true)) {
    const std::string name = block_tensor_name(decoder, index, item.key());
    item.value().copy_(checkpoint_.tensor(name));
    checkpoint_.release(name);
  }
  return block;
}

torch::Tensor BlockwiseModel::embed(const torch::Tensor& ids) const {
  return embedding_.index_select(0, ids.reshape({-1})).view({ids.size(0), ids.size(1), embedding_.size(1)});
}

// The final norm and the projection run on aten (the blocks on the fused
// kernels): the stages' held-out losses have been computed this way since
// the first release, and changing it would move every stage report.
torch::Tensor BlockwiseModel::final_norm(bool decoder, const torch::Tensor& x) const {
  return aten_ops().layer_norm(x, final_w_[decoder], final_b_[decoder], config().layernorm_eps);
}

torch::Tensor BlockwiseModel::project(const torch::Tensor& states) const {
  return project_to_vocabulary(aten_ops(), config(), states, lm_head_weight_, lm_head_bias_);
}

int64_t blockwise_steps(const ModelConfig& config, const BlockwiseRun& run) {
  int64_t n = config.encoder_layers + (run.run_decoder ? config.decoder_layers : 0);
  for (const auto& s : run.skip) {
    if (!s.first || run.run_decoder) --n;
  }
  return n;
}

std::vector<std::vector<ExampleLoss>> run_blockwise(const BlockwiseModel& model, std::vector<BlockBatch>& batches,
                                                    const BlockwiseRun& run) {
  torch::NoGradGuard no_grad;
  const ModelConfig& c = model.config();
  for (auto& b : batches) b.x = model.embed(b.batch.input_ids);
  for (int stack = 0; stack < (run.run_decoder ? 2 : 1); ++stack) {
    const bool decoder = stack == 1;
    if (decoder) {
      for (auto& b : batches) {
        b.memory = model.final_norm(false, b.x);
        b.x = model.embed(b.batch.decoder_input_ids);
      }
    }
    const int64_t layers = decoder ? c.decoder_layers : c.encoder_layers;
    for (int64_t i = 0; i < layers; ++i) {
      if (run.skip.count({decoder, i})) continue;
      Block block = model.load_block(decoder, i);
      for (auto& b : batches) {
        torch::Tensor out;
        if (run.forward) {
          out = run.forward(decoder, i, *block, b, b.x);
        } else if (decoder) {
          out = block->forward(b.x, b.dec_mask, b.dec_rope, b.memory, b.memory_mask);
        } else {
          out = block->forward(b.x, b.enc_mask, b.enc_rope);
        }
        if (run.observer) run.observer(decoder, i, b, b.x, out);
        b.x = out;
      }
      if (run.progress) run.progress->advance(1);
    }
  }
  std::vector<std::vector<ExampleLoss>> losses;
  if (run.losses && run.run_decoder) {
    for (auto& b : batches) {
      auto dec = model.final_norm(true, b.x);
      losses.push_back(losses_from_decoder_states(dec, b.batch.labels, c.vocab_size,
                                                  [&](const torch::Tensor& s) { return model.project(s); }));
    }
  }
  for (auto& b : batches) {
    b.x = torch::Tensor();
    b.memory = torch::Tensor();
  }
  return losses;
}

}  // namespace openba

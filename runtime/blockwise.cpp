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
  const ModelConfig& c = config();
  embedding_ = load(embedding_name(c));
  // A tied lm_head is the embedding itself (no second copy resident).
  lm_head_weight_ = checkpoint_.lm_head_is_tied() ? embedding_ : load(kLmHeadWeightName);
  if (checkpoint_.contains(kLmHeadBiasName)) lm_head_bias_ = load(kLmHeadBiasName);
  for (int s = 0; s < 2; ++s) {
    final_w_[s] = load(final_norm_weight_name(c, s == 1));
    const std::string bias = final_norm_bias_name(c, s == 1);
    if (!bias.empty()) final_b_[s] = load(bias);
  }
  // Tables that belong to a whole stack are resident like the top-level
  // tensors: every block reads them, and a bypassed block 0 still lends its.
  for (const TensorSpec& spec : openba_tensor_specs(c)) {
    if (spec.stack_table) stack_table_[spec.stack] = load(spec.name);
  }
}

StackInputs BlockwiseModel::stack_inputs(bool decoder, const BlockBatch& b) const {
  const auto& ids = decoder ? b.batch.decoder_input_ids : b.batch.input_ids;
  StackInputs in = make_stack_inputs(config(), decoder, ids.size(1),
                                     decoder ? b.batch.decoder_attention_mask : b.batch.attention_mask,
                                     stack_table_[decoder ? 1 : 0], torch::kCPU);
  if (decoder) {
    in.memory = b.memory;
    in.memory_mask = key_padding_mask(b.batch.attention_mask);
  }
  return in;
}

Seq2SeqBlock BlockwiseModel::load_block(bool decoder, int64_t index) const {
  torch::NoGradGuard no_grad;
  Seq2SeqBlock block = make_block(config(), decoder, index);
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
  return openba::final_norm(aten_ops(), config(), x, final_w_[decoder], final_b_[decoder]);
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
  for (auto& b : batches) {
    b.x = model.embed(b.batch.input_ids);
    b.inputs = model.stack_inputs(false, b);
  }
  for (int stack = 0; stack < (run.run_decoder ? 2 : 1); ++stack) {
    const bool decoder = stack == 1;
    if (decoder) {
      for (auto& b : batches) {
        b.memory = model.final_norm(false, b.x);
        b.x = model.embed(b.batch.decoder_input_ids);
        b.inputs = model.stack_inputs(true, b);
      }
    }
    const int64_t layers = decoder ? c.decoder_layers : c.encoder_layers;
    for (int64_t i = 0; i < layers; ++i) {
      if (run.skip.count({decoder, i})) continue;
      Seq2SeqBlock block = model.load_block(decoder, i);
      for (auto& b : batches) {
        torch::Tensor out;
        if (run.forward) {
          out = run.forward(decoder, i, *block, b, b.x);
        } else {
          out = block->forward(select_op_backend(b.x), b.x, b.inputs);
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
    b.inputs = StackInputs();
  }
  return losses;
}

}  // namespace openba

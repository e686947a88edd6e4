#include "train/ul2_batch.h"

#include <torch/torch.h>

#include "model/cpu_autograd.h"
#include "model/evaluation.h"

namespace openba {

TrainBatch make_train_batch(const std::vector<Ul2Example>& examples, const ModelConfig& config,
                            const torch::Device& device) {
  std::vector<Example> converted(examples.size());
  std::vector<const Example*> members;
  TrainBatch out;
  size_t enc = 0, dec = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    converted[i].input_ids.assign(examples[i].input_ids.begin(), examples[i].input_ids.end());
    converted[i].labels.assign(examples[i].labels.begin(), examples[i].labels.end());
    members.push_back(&converted[i]);
    out.denoisers.push_back(examples[i].denoiser);
    out.target_tokens += static_cast<int64_t>(examples[i].labels.size());
    out.real_tokens += static_cast<int64_t>(examples[i].input_ids.size() + examples[i].labels.size());
    enc = std::max(enc, examples[i].input_ids.size());
    dec = std::max(dec, examples[i].labels.size());
  }
  out.padded_tokens = static_cast<int64_t>(examples.size() * (enc + dec));
  out.batch = collate(members, config, device);
  return out;
}

LossParts seq2seq_loss(OpenBAModelImpl& model, const Seq2SeqBatch& batch) {
  auto logits = model.forward(batch);  // [B, Td, V] fp32
  const int64_t b = logits.size(0), t = logits.size(1), v = logits.size(2);
  const auto flat_logits = logits.reshape({b * t, v});
  const auto flat_labels = batch.labels.reshape({b * t});
  auto nll = use_cpu_training_kernels(flat_logits)
                 ? cpu::cross_entropy_autograd(flat_logits, flat_labels)
                 : torch::cross_entropy_loss(flat_logits, flat_labels, {}, at::Reduction::None, -100);
  LossParts out;
  out.nll_sum = nll.sum();
  const auto per_example = nll.detach().reshape({b, t}).to(torch::kDouble).sum(1).cpu();
  const auto counts = (batch.labels != -100).sum(1).cpu();
  for (int64_t i = 0; i < b; ++i) {
    out.example_nll.push_back(per_example[i].item<double>());
    out.example_tokens.push_back(counts[i].item<int64_t>());
  }
  return out;
}

}  // namespace openba

#include "train/ul2_batch.h"

#include <torch/torch.h>

#include <algorithm>

#include "ops/op_backend.h"
#include "runtime/evaluation.h"
#include "train/distillation.h"

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
    out.example_targets.push_back(static_cast<int64_t>(
        std::count_if(examples[i].labels.begin(), examples[i].labels.end(), [](auto id) { return id != -100; })));
    out.target_tokens += static_cast<int64_t>(examples[i].labels.size());
    out.real_tokens += static_cast<int64_t>(examples[i].input_ids.size() + examples[i].labels.size());
    enc = std::max(enc, examples[i].input_ids.size());
    dec = std::max(dec, examples[i].labels.size());
  }
  out.padded_tokens = static_cast<int64_t>(examples.size() * (enc + dec));
  out.batch = collate(members, config, device);
  return out;
}

LossParts seq2seq_loss(Seq2SeqModelImpl& model, const Seq2SeqBatch& batch, const DistillationInputs* distill) {
  auto logits = model.forward(batch);  // [B, Td, V] fp32
  const int64_t b = logits.size(0), t = logits.size(1), v = logits.size(2);
  const auto flat_logits = logits.reshape({b * t, v});
  const auto flat_labels = batch.labels.reshape({b * t});
  // A term of weight 0 is only measured: no graph, no gradient.
  const bool ce_trains = !distill || distill->alpha < 1;
  const bool kd_trains = distill && distill->alpha > 0;
  auto token_nll = [&](const torch::Tensor& l) {
    return select_op_backend(l).token_nll(l, flat_labels);
  };
  torch::Tensor nll;
  if (ce_trains) {
    nll = token_nll(flat_logits);
  } else {
    torch::NoGradGuard measured_only;
    nll = token_nll(flat_logits.detach());
  }
  LossParts out;
  out.nll_sum = nll.sum();
  out.objective = out.nll_sum;
  if (distill) {
    torch::Tensor kd;
    if (kd_trains) {
      kd = distillation_loss(flat_logits, flat_labels, *distill->teacher, distill->temperature);
    } else {
      torch::NoGradGuard measured_only;
      kd = distillation_loss(flat_logits.detach(), flat_labels, *distill->teacher, distill->temperature);
    }
    const torch::Tensor kd_sum = kd.sum();
    out.kd_sum = kd_sum.detach();
    out.teacher_nll_sum = distill->teacher->nll_sum;
    if (!ce_trains) {
      out.objective = kd_sum * distill->alpha;
    } else if (kd_trains) {
      out.objective = out.nll_sum * (1.0 - distill->alpha) + kd_sum * distill->alpha;
    }
  }
  out.example_nll = nll.detach().reshape({b, t}).to(torch::kDouble).sum(1);
  return out;
}

}  // namespace openba

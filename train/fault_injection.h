// Faults a test asks a training run for (debug.* in the training config),
// injected from outside the train step: the step calls its loss function,
// which is the real one wrapped here. Only tests set these.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "train/ul2_batch.h"

namespace openba {

using LossFunction =
    std::function<LossParts(Seq2SeqModelImpl& model, const Seq2SeqBatch& batch, const DistillationInputs* distill)>;

// debug.nonfinite_at_steps: every micro-batch objective of those (1-based)
// steps multiplied by NaN, so the step's loss and gradients are not finite.
// current_step() says which step is being taken.
inline LossFunction inject_nonfinite_losses(LossFunction inner, std::vector<double> steps,
                                            std::function<int64_t()> current_step) {
  if (steps.empty()) return inner;
  return [inner = std::move(inner), steps = std::move(steps), current_step = std::move(current_step)](
             Seq2SeqModelImpl& model, const Seq2SeqBatch& batch, const DistillationInputs* distill) {
    LossParts parts = inner(model, batch, distill);
    const double step = static_cast<double>(current_step());
    for (double s : steps) {
      if (s == step) {
        parts.objective = parts.objective * std::numeric_limits<double>::quiet_NaN();
        break;
      }
    }
    return parts;
  };
}

}  // namespace openba

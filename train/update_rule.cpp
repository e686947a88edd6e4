#include "train/update_rule.h"

#include <torch/torch.h>

namespace openba {
namespace {

class AdamWRule final : public UpdateRule {
 public:
  explicit AdamWRule(const AdamWOptions& options) : options_(options) {}
  const std::vector<std::string>& state_names() const override {
    static const std::vector<std::string> names = {"exp_avg", "exp_avg_sq"};
    return names;
  }
  std::string name() const override { return "AdamW"; }
  void update(const std::vector<Run>& runs, int64_t step, double lr) const override {
    std::vector<AdamWSlice> slices;
    slices.reserve(runs.size());
    for (const Run& r : runs) slices.push_back({r.p, r.g, r.state[0], r.state[1], r.decay});
    adamw_update(slices, options_.weight_decay, AdamWStepSizes::at(step, lr, options_));
  }

 private:
  AdamWOptions options_;
};

}  // namespace

std::unique_ptr<UpdateRule> make_adamw_rule(const AdamWOptions& options) {
  return std::make_unique<AdamWRule>(options);
}

}  // namespace openba

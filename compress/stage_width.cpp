// --stage neuron: FFN neurons, attention heads and hidden channels.
#include <torch/torch.h>

#include "runtime/blockwise.h"
#include "compress/stage_kind.h"
#include "compress/stages.h"
#include "compress/width_scores.h"
#include "compress/width_units.h"
#include "runtime/checkpoint.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/resources.h"

namespace openba {
namespace {

class WidthStage : public Stage {
 public:
  explicit WidthStage(StageContext& ctx) : ctx_(ctx), o_(ctx.options) {}

  void validate() override {
    const ModelConfig& c = ctx_.in.config();
    const WidthShape shape = width_shape_after(c, o_, {"--", "the input model"});
    ffn_ = shape.ffn;
    hidden_ = shape.hidden;
    heads_ = shape.heads;
    method_ = o_.score.empty() ? width_score_methods().front() : o_.score;
    if (!is_one_of(width_score_methods(), method_)) {
      throw Error("--score for the neuron stage is activation, magnitude, taylor or random (got '" + method_ + "')");
    }
    if (!o_.scores_file.empty()) {  // read now: a bad file fails before any work
      scores_ = WidthScores::from_json(ctx_.load_scores(), c, "--scores " + o_.scores_file);
      method_ = scores_.method;
    }
    if (o_.scores_file.empty() && (method_ == "activation" || method_ == "taylor") && o_.calib.empty()) {
      throw Error("--score " + method_ + " needs --calib SHARDS (or --scores FILE)");
    }
  }

  nlohmann::ordered_json options_json() const override {
    nlohmann::ordered_json j;
    j["ffn"] = size_json(o_.ffn);
    j["heads"] = size_json(o_.heads);
    j["hidden"] = size_json(o_.hidden);
    j["round_to"] = o_.round_to;
    j["targets_after_rounding"] = {{"ffn", ffn_}, {"heads", heads_}, {"hidden", hidden_}};
    j["score"] = method_;
    add_scoring_options(j, o_);
    return j;
  }

  SurgeryPlan plan() override {
    const ModelConfig& c = ctx_.in.config();
    if (o_.scores_file.empty()) compute_scores();
    ctx_.save_scores(scores_.to_json());
    keep_ = all_units(c);
    if (hidden_ != c.d_model) keep_.hidden = top_units(scores_.hidden, hidden_);
    for (int st = 0; st < 2; ++st) {
      for (size_t l = 0; l < keep_.heads[st].size(); ++l) {
        if (heads_ != c.num_heads) keep_.heads[st][l] = top_units(scores_.heads[st][l], heads_);
        if (ffn_ != c.ffn_hidden) keep_.ffn[st][l] = top_units(scores_.ffn[st][l], ffn_);
      }
    }
    if (heads_ != c.num_heads) {
      for (size_t l = 0; l < keep_.cross_heads.size(); ++l) keep_.cross_heads[l] = top_units(scores_.cross_heads[l], heads_);
    }
    SurgeryPlan plan;
    plan.out_config = pruned_config(c, keep_);
    plan.lm_head_tied = ctx_.in.lm_head_is_tied();
    const Checkpoint* in = &ctx_.in;
    const WidthUnits* keep = &keep_;
    plan.produce = [in, keep](const std::string& name) {
      return slice_tensor(name, in->tensor(name), in->config(), *keep).contiguous();
    };
    plan.sources = [](const std::string& name) { return std::vector<std::string>{name}; };
    return plan;
  }

  void add_report(nlohmann::ordered_json& report) override {
    const ModelConfig& c = ctx_.in.config();
    nlohmann::ordered_json removed;
    auto dropped = [](const std::vector<int64_t>& kept, const std::vector<double>& scores) {
      auto list = nlohmann::ordered_json::array();
      size_t k = 0;
      for (size_t i = 0; i < scores.size(); ++i) {
        if (k < kept.size() && kept[k] == static_cast<int64_t>(i)) {
          ++k;
          continue;
        }
        list.push_back({{"index", i}, {"score", scores[i]}});
      }
      return list;
    };
    removed["hidden"] = dropped(keep_.hidden, scores_.hidden);
    for (int st = 0; st < 2; ++st) {
      auto heads = nlohmann::ordered_json::array(), ffn = nlohmann::ordered_json::array();
      for (size_t l = 0; l < keep_.heads[st].size(); ++l) {
        heads.push_back(dropped(keep_.heads[st][l], scores_.heads[st][l]));
        // FFN lists can be long: removed indices only (scores are in "scores").
        auto f = nlohmann::ordered_json::array();
        size_t k = 0;
        for (int64_t i = 0; i < c.ffn_hidden; ++i) {
          if (k < keep_.ffn[st][l].size() && keep_.ffn[st][l][k] == i) {
            ++k;
          } else {
            f.push_back(i);
          }
        }
        ffn.push_back(f);
      }
      removed[st ? "decoder_self_heads" : "encoder_heads"] = heads;
      removed[st ? "decoder_ffn" : "encoder_ffn"] = ffn;
    }
    auto cross = nlohmann::ordered_json::array();
    for (size_t l = 0; l < keep_.cross_heads.size(); ++l) cross.push_back(dropped(keep_.cross_heads[l], scores_.cross_heads[l]));
    removed["decoder_cross_heads"] = cross;
    removed["reason"] = "lowest " + scores_.method + " scores";
    report["removed"] = removed;
    report["kept"] = keep_.to_json();
    report["removed_summary"] = "hidden " + std::to_string(c.d_model) + "->" + std::to_string(hidden_) + ", heads " +
                                std::to_string(c.num_heads) + "->" + std::to_string(heads_) + ", ffn " +
                                std::to_string(c.ffn_hidden) + "->" + std::to_string(ffn_) + " (lowest " +
                                scores_.method + " scores)";
    report["scores"] = scores_.to_json();
  }

 private:
  void compute_scores() {
    const ModelConfig& c = ctx_.in.config();
    Stopwatch clock;
    if (method_ == "random") {
      scores_ = random_scores(c, o_.seed);
    } else if (method_ == "magnitude") {
      Progress progress("magnitude scores", ctx_.in.tensor_names().size(), "tensors", !o_.quiet);
      scores_ = magnitude_scores(ctx_.in, &progress);
    } else if (method_ == "activation") {
      const ExampleSet& calib = ctx_.calibration();
      BlockwiseModel model(ctx_.in);
      auto batches = ctx_.batches(calib);
      BlockwiseRun run;
      Progress progress("activation scores", static_cast<uint64_t>(blockwise_steps(c, run)), "blocks", !o_.quiet);
      scores_ = activation_scores(model, batches, &progress);
      ctx_.calibration_seconds += clock.seconds();
    } else {
      const ExampleSet& calib = ctx_.calibration();
      Progress progress("taylor scores", calib.examples.size(), "examples", !o_.quiet);
      scores_ = taylor_scores(ctx_.in, calib, ctx_.limits.max_batch, ctx_.limits.max_tokens, &progress);
      ctx_.calibration_seconds += clock.seconds();
    }
  }

  StageContext& ctx_;
  const CompressOptions& o_;
  std::string method_;
  int64_t ffn_ = 0, heads_ = 0, hidden_ = 0;
  WidthScores scores_;
  WidthUnits keep_;
};

}  // namespace

std::unique_ptr<Stage> make_width_stage(StageContext& ctx) { return std::make_unique<WidthStage>(ctx); }

}  // namespace openba

// --stage layer: explicit drop lists or the lowest-scoring blocks.
#include <torch/torch.h>

#include "runtime/blockwise.h"
#include "compress/layer_stage.h"
#include "compress/stage_kind.h"
#include "compress/stages.h"
#include "runtime/checkpoint.h"
#include "util/error.h"
#include "util/format.h"
#include "util/progress.h"
#include "util/resources.h"

namespace openba {
namespace {

class LayerStage : public Stage {
 public:
  explicit LayerStage(StageContext& ctx) : ctx_(ctx), o_(ctx.options) {}

  void validate() override {
    const ModelConfig& c = ctx_.in.config();
    LayerShape shape = layer_shape_after(c, o_, {"--", "the input model"});
    drop_[0] = std::move(shape.drop[0]);
    drop_[1] = std::move(shape.drop[1]);
    scored_ = shape.scored;
    method_ = o_.score.empty() ? layer_score_methods().front() : o_.score;
    if (!o_.scores_file.empty()) {  // read now: a bad file fails before any work
      scores_ = LayerScores::from_json(ctx_.load_scores(), "--scores " + o_.scores_file);
      if (static_cast<int64_t>(scores_.encoder.size()) != c.encoder_layers ||
          static_cast<int64_t>(scores_.decoder.size()) != c.decoder_layers) {
        throw Error("--scores " + o_.scores_file + ": layer counts differ from the model's");
      }
      method_ = scores_.method;
    }
    if (scored_ || !o_.save_scores.empty()) {
      if (!is_one_of(layer_score_methods(), method_)) {
        throw Error("--score for the layer stage is angular or loss (got '" + method_ + "')");
      }
      if (o_.scores_file.empty()) {
        if (method_ == "angular" && o_.calib.empty()) throw Error("--score angular needs --calib SHARDS (or --scores FILE)");
        if (method_ == "loss" && o_.eval.empty() && o_.calib.empty()) throw Error("--score loss needs --eval SHARDS (or --scores FILE)");
      }
    }
  }

  nlohmann::ordered_json options_json() const override {
    nlohmann::ordered_json j;
    j["drop_encoder_layers"] = o_.drop_encoder_layers;
    j["drop_decoder_layers"] = o_.drop_decoder_layers;
    j["keep_encoder_layers"] = size_json(o_.keep_encoder_layers);
    j["keep_decoder_layers"] = size_json(o_.keep_decoder_layers);
    j["score"] = (scored_ || !o_.save_scores.empty()) ? method_ : "";
    add_scoring_options(j, o_);
    return j;
  }

  SurgeryPlan plan() override {
    if (scored_ || !o_.save_scores.empty() || !o_.scores_file.empty()) {
      if (o_.scores_file.empty()) compute_scores();
      have_scores_ = true;
      ctx_.save_scores(scores_.to_json());
      const ModelConfig& c = ctx_.in.config();
      if (o_.keep_encoder_layers != kUnset) drop_[0] = lowest_scores(scores_.encoder, c.encoder_layers - o_.keep_encoder_layers);
      if (o_.keep_decoder_layers != kUnset) drop_[1] = lowest_scores(scores_.decoder, c.decoder_layers - o_.keep_decoder_layers);
    }
    return layer_surgery_plan(ctx_.in, drop_[0], drop_[1]);
  }

  void add_report(nlohmann::ordered_json& report) override {
    nlohmann::ordered_json removed;
    std::string summary;
    for (int d = 0; d < 2; ++d) {
      auto list = nlohmann::ordered_json::array();
      for (int64_t i : drop_[d]) {
        nlohmann::ordered_json e;
        e["layer"] = i;
        if (have_scores_) e["score"] = (d ? scores_.decoder : scores_.encoder)[i];
        list.push_back(e);
      }
      removed[d ? "decoder_layers" : "encoder_layers"] = list;
      std::vector<std::string> ids;
      for (int64_t i : drop_[d]) ids.push_back(std::to_string(i));
      summary += std::string(d ? "; decoder layers [" : "encoder layers [") + join(ids, ",") + "]";
    }
    removed["reason"] = have_scores_ && (o_.keep_encoder_layers != kUnset || o_.keep_decoder_layers != kUnset)
                            ? "lowest " + scores_.method + " scores"
                            : "explicit lists";
    report["removed"] = removed;
    report["removed_summary"] = summary + " (" + removed["reason"].get<std::string>() + ")";
    if (have_scores_) report["scores"] = scores_.to_json();
  }

 private:
  void compute_scores() {
    BlockwiseModel model(ctx_.in);
    Stopwatch clock;
    if (method_ == "angular") {
      const ExampleSet& calib = ctx_.calibration();
      auto batches = ctx_.batches(calib);
      BlockwiseRun run;
      Progress progress("angular scores", static_cast<uint64_t>(blockwise_steps(ctx_.in.config(), run)), "blocks",
                        !o_.quiet);
      scores_ = angular_layer_scores(model, batches, &progress);
      ctx_.calibration_seconds += clock.seconds();
    } else {
      const ExampleSet* data = ctx_.heldout();
      if (!data) data = &ctx_.calibration();
      auto batches = ctx_.batches(*data);
      double baseline = ctx_.baseline_loss;
      if (!ctx_.heldout()) {  // scoring on calibration data: its own baseline
        BlockwiseRun run;
        const auto losses = run_blockwise(model, batches, run);
        double nll = 0, tokens = 0;
        for (const auto& b : losses) {
          for (const auto& l : b) {
            nll += l.nll_sum;
            tokens += static_cast<double>(l.tokens);
          }
        }
        baseline = tokens > 0 ? nll / tokens : 0.0;
      }
      const ModelConfig& c = ctx_.in.config();
      Progress progress("loss scores", static_cast<uint64_t>(c.encoder_layers + c.decoder_layers), "layers", !o_.quiet);
      scores_ = loss_layer_scores(model, batches, baseline, &progress);
    }
  }

  StageContext& ctx_;
  const CompressOptions& o_;
  bool scored_ = false, have_scores_ = false;
  std::string method_;
  std::vector<int64_t> drop_[2];
  LayerScores scores_;
};

}  // namespace

std::unique_ptr<Stage> make_layer_stage(StageContext& ctx) { return std::make_unique<LayerStage>(ctx); }

}  // namespace openba

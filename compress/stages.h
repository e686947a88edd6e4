// The three stages behind one interface, and what they share while running
// (options, the input checkpoint, tokenizer, calibration and held-out data).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compress/compress.h"
#include "compress/data.h"
#include "compress/heldout.h"
#include "compress/stage_kind.h"
#include "compress/surgery.h"
#include "util/error.h"

namespace openba {

class Checkpoint;
class TokenizerLayout;

// A size option in a report: null when not given.
inline nlohmann::ordered_json size_json(int64_t v) { return v == kUnset ? nlohmann::ordered_json() : nlohmann::ordered_json(v); }

// The options of the scored stages (layer, width) in their report order:
// where scores and calibration/held-out data come from, and the seeds.
inline void add_scoring_options(nlohmann::ordered_json& j, const CompressOptions& o) {
  j["scores_file"] = o.scores_file;
  j["calib"] = o.calib;
  j["calib_samples"] = o.calib_samples;
  j["eval"] = o.eval;
  j["eval_samples_per_denoiser"] = o.eval_samples;
  j["encoder_tokens"] = o.encoder_tokens;
  j["decoder_tokens"] = o.decoder_tokens;
  j["seed"] = o.seed;
  j["data_seed"] = o.data_seed;
  j["heldout_seed"] = o.heldout_seed < 0 ? o.data_seed : static_cast<uint64_t>(o.heldout_seed);
}

struct BlockBatch;

struct StageContext {
  StageContext(const CompressOptions& options, const Checkpoint& in);
  const CompressOptions& options;
  const Checkpoint& in;
  DataOptions data;
  BatchLimits limits;
  double baseline_loss = 0;        // held-out loss of the input (0 without --eval)
  double calibration_seconds = 0;  // time spent in calibration passes

  const TokenizerLayout& tokenizer();       // the model's; Error when it has none
  const ExampleSet& calibration();          // --calib; Error when absent
  const ExampleSet* heldout();              // --eval; null when absent
  std::vector<BlockBatch> batches(const ExampleSet& set) const;
  void save_scores(const nlohmann::ordered_json& scores) const;  // --save-scores
  nlohmann::json load_scores() const;                            // --scores (checked against the model)

  std::unique_ptr<TokenizerLayout> tokenizer_;
  std::unique_ptr<ExampleSet> calibration_, heldout_;
};

class Stage {
 public:
  virtual ~Stage() = default;
  // Checks every flag against the model before any data is read.
  virtual void validate() = 0;
  virtual nlohmann::ordered_json options_json() const = 0;
  // Scores (or loads scores) and decides what to remove.
  virtual SurgeryPlan plan() = 0;
  // The held-out data in the output model's ids (the vocabulary stage remaps).
  virtual const ExampleSet& heldout_for_output(const ExampleSet& heldout) { return heldout; }
  // Checks the staged output before it is evaluated and committed.
  virtual void check_output(const std::string& staged_dir) { (void)staged_dir; }
  // "removed", "scores" and stage-specific sections.
  virtual void add_report(nlohmann::ordered_json& report) = 0;
};

std::unique_ptr<Stage> make_layer_stage(StageContext& ctx);
std::unique_ptr<Stage> make_width_stage(StageContext& ctx);
std::unique_ptr<Stage> make_vocab_stage(StageContext& ctx);

inline std::unique_ptr<Stage> make_stage(StageKind kind, StageContext& ctx) {
  switch (kind) {
    case StageKind::kLayer: return make_layer_stage(ctx);
    case StageKind::kWidth: return make_width_stage(ctx);
    case StageKind::kVocab: return make_vocab_stage(ctx);
  }
  throw Error("unknown stage kind");
}

}  // namespace openba

#include "pipeline/pipeline_plan.h"

#include <filesystem>
#include <memory>

#include "compress/layer_stage.h"
#include "compress/stage_kind.h"
#include "compress/width_units.h"
#include "runtime/checkpoint.h"
#include "pipeline/scratch_baseline.h"
#include "train/distillation.h"
#include "tokenizer/layout.h"
#include "tokenizer/shard_reader.h"
#include "util/error.h"

namespace openba {
namespace fs = std::filesystem;
namespace {

std::string yaml_quoted(const std::string& s) {
  YAML::Emitter e;
  e << YAML::DoubleQuoted << s;
  return e.c_str();
}

// What the steps before a step leave: the shape and the tokenizer.
struct PlanState {
  ModelConfig config;
  std::unique_ptr<TokenizerLayout> tokenizer;  // null when the model has none
  int64_t pieces = 0;
  const PipelineStep* vocab_step = nullptr;  // the vocabulary step, once one ran
};

// A step's shape checks are the stage's own (compress/stage_kind.h), worded
// for a pipeline file; only what a plan can know early is checked here
// besides (calibration data present for the scores that need it).
const ShapeContext kStepShapes{"", "the model at this step"};

void plan_layer(const PipelineStep& s, ModelConfig& c) {
  const CompressOptions& o = s.compress;
  const LayerShape shape = layer_shape_after(c, o, kStepShapes);
  c = shape.config;
  if (shape.scored && o.scores_file.empty() && o.calib.empty()) throw Error("scoring layers needs calibration data (data.train)");
}

void plan_neuron(const PipelineStep& s, ModelConfig& c) {
  const CompressOptions& o = s.compress;
  c = width_shape_after(c, o, kStepShapes).config;
  const std::string score = o.score.empty() ? width_score_methods().front() : o.score;
  if (!is_one_of(width_score_methods(), score)) {
    throw Error("score for neuron steps is activation, magnitude, taylor or random (got '" + score + "')");
  }
  if ((score == "activation" || score == "taylor") && o.scores_file.empty() && o.calib.empty()) {
    throw Error("score " + score + " needs calibration data (data.train)");
  }
}

void plan_vocab(const PipelineStep& s, PlanState& st) {
  const CompressOptions& o = s.compress;
  if (!st.tokenizer) throw Error("a vocab step needs the model's tokenizer (spiece.model in the model directory)");
  st.config = vocab_shape_after(st.config, o, st.pieces, 0, kStepShapes);
  if (o.corpus.empty() && o.calib.empty()) throw Error("a vocab step needs frequencies: data.train or corpus");
  st.pieces = o.vocab;
}

void check_shards(const std::string& dir, const PlanState& st, const std::string& what) {
  if (dir.empty()) return;
  const ShardSet shards = ShardSet::open(dir);
  if (st.tokenizer) shards.require_tokenizer(st.tokenizer->fingerprint(), "the model's tokenizer (" + what + " " + dir + ")");
}

// A pretrain step's teacher: the input model, an earlier step (which, the
// vocabulary step being last, has the student's tokenizer and rows), or a
// directory checked here as openba-pretrain would check it.
void plan_teacher(const PipelineConfig& p, const PipelineStep& s, const DistillConfig& d, const PlanState& st) {
  check_teacher_top_k(d.top_k, st.config.vocab_size);
  if (s.distill.teacher == "input" || s.distill.teacher_step >= 0) return;
  if (!fs::is_directory(s.distill.teacher)) {
    throw Error(s.distill.where + ": distill.teacher " + s.distill.teacher +
                ": neither 'input', nor a step before this one, nor a checkpoint directory");
  }
  // A pretrain step's data is the model's tokenizer (plan_pipeline requires it).
  (void)open_matching_teacher(s.distill.teacher, st.config.vocab_size, st.tokenizer->fingerprint(),
                              "(" + p.model + " at step " + s.id + ")");
}

}  // namespace

std::vector<ConfigNode::Override> pipeline_training_overrides(const PipelineConfig& p, const std::string& source,
                                                              const std::string& input, uint64_t data_seed) {
  std::vector<ConfigNode::Override> set;
  set.push_back({"model.checkpoint=" + yaml_quoted(input), source + ": model.checkpoint (the previous step's output)"});
  if (!p.data.train.empty()) set.push_back({"data.train=[{shards: " + yaml_quoted(p.data.train) + "}]", p.file + ": data.train"});
  if (!p.data.heldout.empty()) {
    set.push_back({"data.heldout=" + yaml_quoted(p.data.heldout), p.file + ": data.heldout"});
    // The run's one held-out set: the examples every step is measured on.
    set.push_back({"eval.seed=" + std::to_string(p.data.heldout_seed), p.file + ": data.heldout_seed"});
    set.push_back({"eval.examples_per_denoiser=" + std::to_string(p.data.heldout_per_denoiser),
                   p.file + ": data.heldout_per_denoiser"});
  }
  set.push_back({"data.seed=" + std::to_string(data_seed), p.file + ": data.seed"});
  set.push_back({"ul2.encoder_tokens=" + std::to_string(p.data.encoder_tokens), p.file + ": data.encoder_tokens"});
  set.push_back({"ul2.decoder_tokens=" + std::to_string(p.data.decoder_tokens), p.file + ": data.decoder_tokens"});
  return set;
}

ConfigNode pretrain_config_node(const PipelineConfig& p, const PipelineStep& s, const std::string& input,
                                const std::string& teacher) {
  const std::string source = p.file + " (step " + s.id + ")";
  // Each recovery step draws its own examples.
  std::vector<ConfigNode::Override> set =
      pipeline_training_overrides(p, source, input, p.data.seed + static_cast<uint64_t>(s.index));
  set.insert(set.end(), s.train_set.begin(), s.train_set.end());
  if (!teacher.empty()) {
    set.push_back({"distill.teacher=" + yaml_quoted(teacher), s.distill.where + ": distill.teacher (" + s.distill.teacher + ")"});
    set.insert(set.end(), s.distill.options.begin(), s.distill.options.end());
  }
  return ConfigNode::load(s.train_config, set, source);
}

TrainConfig pretrain_config(const PipelineConfig& p, const PipelineStep& s, const std::string& input,
                            const std::string& teacher) {
  const ConfigNode node = pretrain_config_node(p, s, input, teacher);
  return read_train_config(node);
}

std::vector<ModelConfig> plan_pipeline(const PipelineConfig& p) {
  PlanState st;
  const Checkpoint in = Checkpoint::open(p.model);
  st.config = in.config();
  if (fs::is_regular_file(fs::path(p.model) / "spiece.model")) {
    st.tokenizer = std::make_unique<TokenizerLayout>(TokenizerLayout::load(p.model));
    st.pieces = st.tokenizer->piece_count();
  }
  if (!st.tokenizer && (!p.data.train.empty() || !p.data.heldout.empty())) {
    throw Error(p.file + ": " + p.model + " has no tokenizer (spiece.model) to read data.train/data.heldout with; "
                "create the model with openba-init --tokenizer DIR");
  }
  check_shards(p.data.train, st, "data.train");
  check_shards(p.data.heldout, st, "data.heldout");
  std::vector<ModelConfig> shapes;
  for (const auto& s : p.steps) {
    try {
      if (st.vocab_step) {
        throw Error("comes after the vocabulary step " + st.vocab_step->id +
                    ": its data would have to be re-encoded with the pruned tokenizer; make vocab the last step "
                    "(as OpenBA-V2 did) and start another pipeline from its output with re-encoded shards");
      }
      if (s.kind == StepKind::kLayer) plan_layer(s, st.config);
      if (s.kind == StepKind::kNeuron) plan_neuron(s, st.config);
      if (s.kind == StepKind::kVocab) {
        plan_vocab(s, st);
        st.vocab_step = &s;
      }
      if (prunes(s.kind)) {
        check_shards(s.compress.calib, st, "calib");
        for (const auto& c : s.compress.corpus) check_shards(c, st, "corpus");
      }
      if (s.kind == StepKind::kPretrain) {
        if (p.data.train.empty()) throw Error("a pretrain step needs data.train");
        const TrainConfig c =
            pretrain_config(p, s, "(the output of the step before)", s.distill.enabled() ? "(the teacher)" : "");
        (void)c.accumulation_steps(s.nproc > 0 ? s.nproc : 1);
        for (const auto& source : c.train) check_shards(source.shards, st, "data.train");
        check_shards(c.heldout, st, "data.heldout");
        if (s.distill.enabled()) plan_teacher(p, s, c.distill, st);
      }
      if (s.kind == StepKind::kEval && p.data.heldout.empty()) throw Error("an eval step needs data.heldout");
    } catch (const Error& e) {
      const std::string what = e.what();
      // Errors that already name a line of the pipeline file stand as they are.
      if (what.rfind(p.file + ":", 0) == 0) throw;
      throw Error(s.where + ": step " + s.id + ": " + what);
    }
    shapes.push_back(st.config);
  }
  if (p.scratch.enabled()) (void)plan_scratch(p);
  return shapes;
}

}  // namespace openba

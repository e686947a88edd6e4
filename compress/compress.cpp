#include "compress/compress.h"

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "runtime/blockwise.h"
#include "compress/data.h"
#include "compress/heldout.h"
#include "compress/layer_stage.h"
#include "compress/report.h"
#include "compress/stages.h"
#include "compress/surgery.h"
#include "runtime/checkpoint.h"
#include "arch/openba/layout.h"
#include "tokenizer/layout.h"
#include "util/error.h"
#include "util/format.h"
#include "util/fs.h"
#include "util/progress.h"
#include "util/resources.h"

namespace openba {
namespace fs = std::filesystem;

StageContext::StageContext(const CompressOptions& o, const Checkpoint& c) : options(o), in(c) {
  data.encoder_tokens = o.encoder_tokens;
  data.decoder_tokens = o.decoder_tokens;
  data.seed = o.data_seed;
  data.heldout_seed = o.heldout_seed < 0 ? o.data_seed : static_cast<uint64_t>(o.heldout_seed);
  limits.max_batch = o.batch_size;
  limits.max_tokens = o.max_batch_tokens;
}

const TokenizerLayout& StageContext::tokenizer() {
  if (!tokenizer_) {
    if (!fs::is_regular_file(fs::path(in.dir()) / "spiece.model")) {
      throw Error(in.dir() + ": the model has no tokenizer (spiece.model), needed for --calib/--eval/--stage vocab; "
                             "create it with openba-init --tokenizer DIR");
    }
    tokenizer_ = std::make_unique<TokenizerLayout>(TokenizerLayout::load(in.dir()));
  }
  return *tokenizer_;
}

const ExampleSet& StageContext::calibration() {
  if (!calibration_) {
    if (options.calib.empty()) throw Error("--score " + options.score + " needs calibration data (--calib SHARDS)");
    if (is_jsonl_path(options.calib)) {
      calibration_ = std::make_unique<ExampleSet>(jsonl_examples(options.calib, in.config().vocab_size, "--calib"));
    } else {
      calibration_ = std::make_unique<ExampleSet>(
          calibration_examples(options.calib, tokenizer(), options.calib_samples, data, "--calib"));
    }
  }
  return *calibration_;
}

const ExampleSet* StageContext::heldout() {
  if (!heldout_ && !options.eval.empty()) {
    heldout_ = std::make_unique<ExampleSet>(
        is_jsonl_path(options.eval) ? jsonl_examples(options.eval, in.config().vocab_size, "--eval")
                                    : heldout_examples(options.eval, tokenizer(), options.eval_samples, data, "--eval"));
  }
  return heldout_.get();
}

std::vector<BlockBatch> StageContext::batches(const ExampleSet& set) const {
  return make_block_batches(set.examples, set.denoisers, in.config(), limits.max_batch, limits.max_tokens);
}

void StageContext::save_scores(const nlohmann::ordered_json& scores) const {
  if (options.save_scores.empty()) return;
  nlohmann::ordered_json j = scores;
  j["model"] = in.dir();
  j["architecture"] = in.config().summary();
  StagingDir::write_file_atomically(options.save_scores, j.dump(1) + "\n");
}

nlohmann::json StageContext::load_scores() const {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(options.scores_file));
  } catch (const nlohmann::json::exception& e) {
    throw Error("--scores " + options.scores_file + ": malformed JSON: " + e.what());
  }
  if (!j.contains("architecture") || j["architecture"] != in.config().summary()) {
    throw Error("--scores " + options.scores_file + ": scores of another model (" +
                (j.contains("architecture") ? j["architecture"].dump() : std::string("no architecture")) + "), not " +
                in.config().summary());
  }
  return j;
}

const nlohmann::ordered_json& CompressResult::heldout() const {
  static const nlohmann::ordered_json none;
  const auto it = report.find("heldout");
  return it == report.end() ? none : *it;
}

std::string CompressResult::removed_summary() const { return report.value("removed_summary", std::string()); }

CompressResult run_compress(const CompressOptions& o) {
  Stopwatch clock;
  const std::optional<StageKind> kind = parse_stage_kind(o.stage);
  if (!kind) throw Error("--stage must be layer, neuron or vocab (got '" + o.stage + "')");
  if (o.model.empty()) throw Error("--model is required");
  if (o.out.empty()) throw Error("--out is required");
  check_output_path(o.out, o.model, o.force);
  const Checkpoint in = Checkpoint::open(o.model);
  StageContext ctx(o, in);
  std::unique_ptr<Stage> stage = make_stage(*kind, ctx);
  stage->validate();  // every target checked before reading data or writing

  nlohmann::ordered_json report;
  report["stage"] = stage_kind_name(*kind);
  report["command_line"] = o.command_line;
  report["options"] = stage->options_json();

  std::unique_ptr<HeldoutLoss> before;
  if (const ExampleSet* h = ctx.heldout()) {
    before = std::make_unique<HeldoutLoss>(evaluate_checkpoint(in, *h, ctx.limits, !o.quiet, "eval before"));
  }
  ctx.baseline_loss = before ? before->loss : 0.0;
  SurgeryPlan plan = stage->plan();
  plan.max_shard_bytes = o.max_shard_bytes;

  StagedOutput staged(o.out, o.model, o.force);
  uint64_t out_bytes = 0;
  for (const auto& spec : openba_tensor_specs(plan.out_config)) out_bytes += spec.numel() * dtype_size(plan.out_config.dtype);
  {
    Progress progress("surgery", out_bytes, "bytes", !o.quiet);
    staged.write(in, plan, &progress);
  }
  stage->check_output(staged.path());
  const Checkpoint out = Checkpoint::open(staged.path());
  nlohmann::ordered_json surgery;
  surgery["bytes_written"] = staged.bytes_written();
  surgery["seconds"] = staged.seconds();
  surgery["gb_per_s"] = staged.bytes_written() / std::max(1e-9, staged.seconds()) / 1e9;
  // The input is read once whatever is kept: its bytes per second compare with a plain copy.
  surgery["input_gb_per_s"] = in.bytes_on_disk() / std::max(1e-9, staged.seconds()) / 1e9;
  report["surgery"] = surgery;

  if (const ExampleSet* h = ctx.heldout()) {
    const ExampleSet& after_data = stage->heldout_for_output(*h);
    const HeldoutLoss after = evaluate_checkpoint(out, after_data, ctx.limits, !o.quiet, "eval after");
    nlohmann::ordered_json held;
    held["examples"] = h->examples.size();
    held["per_denoiser"] = o.eval_samples;
    held["before"] = before->to_json(h->denoiser_names);
    held["after"] = after.to_json(h->denoiser_names);
    held["loss_increase"] = after.loss - before->loss;
    report["heldout"] = held;
  }
  if (ctx.calibration_) {
    nlohmann::ordered_json cal;
    cal["examples"] = ctx.calibration_->examples.size();
    cal["tokens"] = ctx.calibration_->tokens();
    cal["tokens_per_s"] = ctx.calibration_seconds > 0 ? ctx.calibration_->tokens() / ctx.calibration_seconds : 0.0;
    cal["seconds"] = ctx.calibration_seconds;
    report["calibration"] = cal;
  }
  stage->add_report(report);
  add_model_sections(report, in, out);
  report["wall_time_s"] = clock.seconds();
  report["peak_rss_bytes"] = peak_rss_bytes();
  report["checkpoint_bytes"] = in.bytes_on_disk();
  report["peak_rss_over_checkpoint"] = static_cast<double>(peak_rss_bytes()) / static_cast<double>(in.bytes_on_disk());
  staged.add_file("report.json", report.dump(2) + "\n");
  const std::string path = staged.commit();
  std::printf("%s", report_table(report).c_str());
  std::printf("wrote %s\n", path.c_str());
  return {path, std::move(report)};
}

}  // namespace openba

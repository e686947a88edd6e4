#include "pipeline/pipeline_steps.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "compress/compress.h"
#include "compress/report.h"
#include "runtime/checkpoint.h"
#include "pipeline/pipeline_plan.h"
#include "tokenizer/layout.h"
#include "train/gradient_sync.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/format.h"
#include "util/fs.h"
#include "util/resources.h"

namespace openba {
namespace fs = std::filesystem;
namespace {

// An output an earlier run left under other options: moved aside at once
// (so nothing can mistake it for this run's), then deleted.
void remove_stale(const std::string& dir) {
  if (!fs::exists(dir)) return;
  const fs::path p(dir);
  const fs::path aside = p.parent_path() / ("." + p.filename().string() + ".stale-" + std::to_string(::getpid()));
  fs::rename(p, aside);
  fs::remove_all(aside);
}

nlohmann::ordered_json heldout_section(HeldoutSet& heldout, const nlohmann::ordered_json& before,
                                       const nlohmann::ordered_json& after) {
  nlohmann::ordered_json h = heldout.describe();
  h["before"] = before;
  h["after"] = after;
  if (before.is_object() && after.is_object()) h["loss_increase"] = after["loss"].get<double>() - before["loss"].get<double>();
  return h;
}

}  // namespace

TrainLog read_train_log(const std::string& metrics) {
  TrainLog t;
  std::ifstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw Error(metrics + ": malformed line: " + line.substr(0, 80));
    }
    if (j.contains("loss") && j.contains("tokens")) {
      if (t.points++ == 0) t.first_loss = j["loss"].get<double>();
      t.last_loss = j["loss"].get<double>();
      t.tokens = j["tokens"].get<int64_t>();
    }
  }
  return t;
}

TrainingRun train_into(const PipelineRun& run, const ConfigNode& node, const std::string& dir, const std::string& launcher,
                       int nproc, bool resume, const std::string& label) {
  const TrainConfig config = read_train_config(node);
  TrainingRun out;
  out.final_dir = (fs::path(dir) / "final").string();
  if (!resume) remove_stale(dir);
  // The final model is written last, atomically: when it is there the
  // training finished.
  if (resume && fs::is_directory(out.final_dir)) return out;
  Stopwatch clock;
  if (launcher.empty() && nproc == 0) {
    if (resume && fs::is_directory(dir)) std::printf("== %s: resuming from its last checkpoint\n", label.c_str());
    TrainerRun t;
    t.out_dir = dir;
    t.resume = resume;
    t.effective_config = node.dump();
    t.quiet = run.quiet;
    LocalSync sync;
    run_training(config, t, sync);
  } else {
    fs::create_directories(dir);
    const std::string config_path = (fs::path(dir) / "pipeline-train.yaml").string();
    StagingDir::write_file_atomically(config_path, node.dump());
    std::string cmd = launcher.empty() ? "" : launcher + " ";
    cmd += shell_quote((fs::path(run.tools_dir) / "openba-pretrain").string());
    if (nproc > 0) cmd += " --nproc " + std::to_string(nproc);
    cmd += " --config " + shell_quote(config_path) + " --out " + shell_quote(dir);
    if (resume) cmd += " --resume";
    if (run.quiet) cmd += " --quiet";
    out.launcher = cmd;
    std::printf("== %s: %s\n", label.c_str(), cmd.c_str());
    std::fflush(stdout);
    const int status = std::system(cmd.c_str());
    if (status != 0 || !fs::is_directory(out.final_dir)) {
      const int code = status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      throw Error(label + ": the launcher exited with status " + std::to_string(code) + " (see " + dir +
                  "/train.log); run the same command again to resume from the last checkpoint");
    }
  }
  out.seconds = clock.seconds();
  return out;
}

const ExampleSet& HeldoutSet::examples() {
  if (!set_) {
    const TokenizerLayout tokenizer = TokenizerLayout::load(pipeline_.model);
    DataOptions data;
    data.encoder_tokens = pipeline_.data.encoder_tokens;
    data.decoder_tokens = pipeline_.data.decoder_tokens;
    data.seed = pipeline_.data.seed;
    data.heldout_seed = pipeline_.data.heldout_seed;
    set_ = std::make_unique<ExampleSet>(
        heldout_examples(pipeline_.data.heldout, tokenizer, pipeline_.data.heldout_per_denoiser, data, "data.heldout"));
  }
  return *set_;
}

HeldoutLoss HeldoutSet::evaluate(const std::string& dir, const std::string& label) {
  BatchLimits limits;
  limits.max_batch = pipeline_.compress_defaults.batch_size;
  limits.max_tokens = pipeline_.compress_defaults.max_batch_tokens;
  const Checkpoint checkpoint = Checkpoint::open(dir);
  return evaluate_checkpoint(checkpoint, examples(), limits, !quiet_, label);
}

nlohmann::ordered_json HeldoutSet::describe() {
  nlohmann::ordered_json j;
  j["data"] = pipeline_.data.heldout;
  j["examples"] = examples().examples.size();
  j["per_denoiser"] = pipeline_.data.heldout_per_denoiser;
  j["seed"] = pipeline_.data.heldout_seed;
  j["encoder_tokens"] = pipeline_.data.encoder_tokens;
  j["decoder_tokens"] = pipeline_.data.decoder_tokens;
  return j;
}

StepOutcome run_compress_step(const PipelineRun& run, const PipelineStep& step, const StepInput& input) {
  CompressOptions o = step.compress;
  o.model = input.dir;
  o.out = (fs::path(run.run_dir) / step.id).string();
  o.force = true;  // an output left by an earlier run of this step under other options is replaced atomically
  o.quiet = run.quiet;
  o.tokenize_tool = run.tokenize_tool;
  o.command_line = run.command_line + " (step " + step.id + ")";
  StepOutcome out;
  const CompressResult result = run_compress(o);
  out.output = o.out;
  out.report = (fs::path(out.output) / "report.json").string();
  if (!result.heldout().is_null()) {
    out.heldout_before = result.heldout()["before"];
    out.heldout_after = result.heldout()["after"];
  }
  out.summary = result.removed_summary();
  if (step.baseline == "random") {
    // The released OpenBA-V2 selection on the same shape: what the scores buy.
    CompressOptions b = o;
    b.score = "random";
    b.scores_file.clear();
    b.save_scores.clear();
    b.out = o.out + "-random";
    b.command_line = run.command_line + " (step " + step.id + ", random baseline)";
    std::printf("== %s: the random-selection baseline of the same shape\n", step.id.c_str());
    const CompressResult random = run_compress(b);
    const std::string dir = b.out;
    out.baseline["kind"] = "random";
    out.baseline["score"] = "random";
    out.baseline["dir"] = dir;
    out.baseline["report"] = (fs::path(dir) / "report.json").string();
    out.baseline["heldout_after"] = random.heldout().is_null() ? nlohmann::ordered_json() : random.heldout()["after"]["loss"];
  }
  return out;
}

StepOutcome run_pretrain_step(const PipelineRun& run, const PipelineConfig& pipeline, const PipelineStep& step,
                              const StepInput& input, bool resume, HeldoutSet& heldout) {
  const std::string dir = (fs::path(run.run_dir) / step.id).string();
  const ConfigNode node = pretrain_config_node(pipeline, step, input.dir, input.teacher);
  const TrainConfig config = read_train_config(node);
  const TrainingRun training = train_into(run, node, dir, step.launcher, step.nproc, resume, "step " + step.id);
  const std::string& final_dir = training.final_dir;
  const std::string& launcher = training.launcher;
  double train_seconds = training.seconds;

  StepOutcome out;
  out.output = final_dir;
  nlohmann::ordered_json before = input.heldout;
  if (heldout.enabled()) {
    if (!before.is_object()) before = heldout.evaluate(input.dir, "eval before").to_json(heldout.examples().denoiser_names);
    out.heldout_before = before;
    out.heldout_after = heldout.evaluate(final_dir, "eval after").to_json(heldout.examples().denoiser_names);
  }
  const std::string metrics = (fs::path(dir) / "metrics.jsonl").string();
  const TrainLog log = read_train_log(metrics);
  if (step.baseline == "ul2") {
    // The same step without distillation: same input, data, schedule and
    // tokens, so the difference is what the teacher bought.
    const std::string ul2_dir = dir + "-ul2";
    const ConfigNode ul2_node = pretrain_config_node(pipeline, step, input.dir);
    const TrainingRun ul2 = train_into(run, ul2_node, ul2_dir, step.launcher, step.nproc, resume,
                                       "step " + step.id + ", without distillation");
    train_seconds += ul2.seconds;
    const std::string ul2_metrics = (fs::path(ul2_dir) / "metrics.jsonl").string();
    out.baseline["kind"] = "ul2";
    out.baseline["score"] = "ul2 without distillation";
    out.baseline["dir"] = ul2.final_dir;
    out.baseline["report"] = (fs::path(ul2_dir) / "config.yaml").string();  // the training config it ran
    out.baseline["metrics"] = ul2_metrics;
    out.baseline["tokens"] = read_train_log(ul2_metrics).tokens;
    out.baseline["heldout_after"] = heldout.enabled() ? nlohmann::ordered_json(heldout.evaluate(ul2.final_dir, "eval ul2 baseline").loss)
                                                      : nlohmann::ordered_json();
  }
  nlohmann::ordered_json train;
  train["steps"] = config.steps;
  train["tokens"] = log.tokens;
  train["global_batch"] = config.global_batch;
  train["lr"] = config.lr;
  train["min_lr"] = config.min_lr;
  train["warmup_steps"] = config.warmup_steps;
  train["first_loss"] = log.first_loss;
  train["last_loss"] = log.last_loss;
  train["metrics"] = metrics;
  train["launcher"] = launcher;
  train["seconds"] = train_seconds;
  if (config.distill.enabled()) {
    train["distill"] = {{"teacher", config.distill.teacher}, {"teacher_ref", step.distill.teacher},
                        {"alpha", config.distill.alpha}, {"temperature", config.distill.temperature},
                        {"top_k", config.distill.top_k}};
  }
  out.train = train;
  char summary[160];
  std::snprintf(summary, sizeof(summary), "%lld steps, %s tokens, training loss %.3f -> %.3f",
                static_cast<long long>(config.steps), std::to_string(log.tokens).c_str(), log.first_loss, log.last_loss);
  out.summary = summary;

  // The step's report, in the compression stages' form so the lineage runs
  // through it (the next stage reads final/report.json).
  nlohmann::ordered_json report;
  report["stage"] = "pretrain";
  report["command_line"] = run.command_line + " (step " + step.id + ")";
  nlohmann::ordered_json options;
  options["config"] = step.train_config;
  auto set = nlohmann::ordered_json::array();
  for (const auto& s : step.train_set) set.push_back(s.assignment);
  options["set"] = set;
  options["launcher"] = launcher;
  report["options"] = options;
  report["train"] = train;
  if (heldout.enabled()) report["heldout"] = heldout_section(heldout, out.heldout_before, out.heldout_after);
  report["removed_summary"] = out.summary;
  const Checkpoint in = Checkpoint::open(input.dir);
  const Checkpoint trained = Checkpoint::open(final_dir);
  add_model_sections(report, in, trained);
  report["wall_time_s"] = train_seconds;
  out.report = (fs::path(dir) / "report.json").string();
  StagingDir::write_file_atomically((fs::path(final_dir) / "report.json").string(), report.dump(2) + "\n");
  StagingDir::write_file_atomically(out.report, report.dump(2) + "\n");
  return out;
}

StepOutcome run_eval_step(const PipelineRun& run, const PipelineStep& step, const StepInput& input, HeldoutSet& heldout) {
  const std::string dir = (fs::path(run.run_dir) / step.id).string();
  remove_stale(dir);
  StepOutcome out;
  out.output = input.dir;
  const auto result = heldout.evaluate(input.dir, "eval").to_json(heldout.examples().denoiser_names);
  out.heldout_before = result;
  out.heldout_after = result;
  char summary[96];
  std::snprintf(summary, sizeof(summary), "held-out loss %.4f", result["loss"].get<double>());
  out.summary = summary;
  nlohmann::ordered_json report;
  report["stage"] = "eval";
  report["command_line"] = run.command_line + " (step " + step.id + ")";
  report["model"] = input.dir;
  report["heldout"] = heldout_section(heldout, result, result);
  StagingDir staging(dir);
  write_file_durably((fs::path(staging.path()) / "report.json").string(), report.dump(2) + "\n");
  staging.commit();
  out.report = (fs::path(dir) / "report.json").string();
  return out;
}

}  // namespace openba

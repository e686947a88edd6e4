#include "pipeline/scratch_baseline.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "runtime/checkpoint.h"
#include "runtime/checkpoint_writer.h"
#include "arch/openba/init.h"
#include "runtime/initial_checkpoint.h"
#include "pipeline/pipeline_plan.h"
#include "pipeline/pipeline_steps.h"
#include "report/report_data.h"
#include "train/train_config.h"
#include "util/error.h"
#include "util/format.h"
#include "util/fs.h"

namespace openba {
namespace fs = std::filesystem;
namespace {

constexpr double kMinLrRatio = 0.1;  // cosine to lr / 10, as the demo's base pretraining

std::string lr_text(double lr) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", lr);
  return text;
}

std::string run_id(double lr) { return "scratch-lr-" + lr_text(lr); }
const char* kExtendedId = "scratch-extended";
const char* kInitId = "scratch-init";

// Evaluations along a run: about ten, so its held-out curve has a shape.
int64_t eval_interval(int64_t steps) { return std::max<int64_t>(1, (steps + 9) / 10); }

ConfigNode scratch_config_node(const PipelineConfig& p, const std::string& init, double lr, int64_t steps) {
  const std::string source = p.file + " (baselines.scratch)";
  std::vector<ConfigNode::Override> set = pipeline_training_overrides(p, source, init, p.data.seed);
  set.insert(set.end(), p.scratch.train_set.begin(), p.scratch.train_set.end());
  const std::string where = p.scratch.where + " (baselines.scratch)";
  char text[64];
  set.push_back({"trainer.steps=" + std::to_string(steps), where + ": steps for the recovery steps' examples"});
  std::snprintf(text, sizeof(text), "trainer.lr=%.17g", lr);
  set.push_back({text, where + ": lr"});
  std::snprintf(text, sizeof(text), "trainer.min_lr=%.17g", lr * kMinLrRatio);
  set.push_back({text, where + ": lr / 10"});
  const int64_t every = eval_interval(steps);
  set.push_back({"eval.every=" + std::to_string(every), where + ": its held-out curve"});
  set.push_back({"checkpoint.every=" + std::to_string(every), where + ": resumable"});
  set.push_back({"checkpoint.keep=1", where});
  return ConfigNode::load(p.scratch.train_config, set, source);
}


// The first evaluation point of `curve` at or below `target`, linear
// between it and the point before; nullopt when none reaches it.
std::optional<double> tokens_to_reach(const std::vector<std::pair<double, double>>& curve, double target) {
  for (size_t i = 0; i < curve.size(); ++i) {
    if (!(curve[i].second <= target)) continue;
    if (i == 0) return curve[0].first;
    const auto [t0, l0] = curve[i - 1];
    const auto [t1, l1] = curve[i];
    return t0 + (l0 - target) / (l0 - l1) * (t1 - t0);
  }
  return std::nullopt;
}

// (tokens, held-out loss) of a run's evaluations.
std::vector<std::pair<double, double>> eval_curve(RunFiles& files, const std::string& metrics) {
  std::vector<std::pair<double, double>> out;
  for (const MetricsLine& m : files.metrics(metrics)) {
    if (m.eval_loss && m.tokens && std::isfinite(*m.eval_loss)) out.push_back({*m.tokens, *m.eval_loss});
  }
  return out;
}

nlohmann::ordered_json curve_json(const std::vector<std::pair<double, double>>& curve) {
  auto j = nlohmann::ordered_json::array();
  for (const auto& [t, l] : curve) j.push_back({t, l});
  return j;
}

}  // namespace

ScratchPlan plan_scratch(const PipelineConfig& p) {
  const ScratchBaseline& b = p.scratch;
  try {
    if (p.data.heldout.empty()) throw Error("it needs data.heldout (the models are compared by held-out loss)");
    ScratchPlan plan;
    size_t first_prune = p.steps.size();
    for (size_t i = 0; i < p.steps.size(); ++i) {
      if (prunes(p.steps[i].kind) && first_prune == p.steps.size()) first_prune = i;
      if (p.steps[i].kind == StepKind::kPretrain && first_prune < i) plan.recovery.push_back(i);
    }
    if (plan.recovery.empty()) {
      throw Error("it compares with the recovered model, but no pretrain step comes after a pruning step");
    }
    plan.compared = plan.recovery.back();
    for (size_t i : plan.recovery) {
      const PipelineStep& s = p.steps[i];
      const TrainConfig c = pretrain_config(p, s, "(the output of the step before)", s.distill.enabled() ? "(the teacher)" : "");
      plan.recovery_examples += c.steps * c.global_batch;
    }
    for (double lr : b.lrs) {
      const TrainConfig c = read_train_config(scratch_config_node(p, "(the random init)", lr, 1));
      plan.global_batch = c.global_batch;
      plan.steps = (plan.recovery_examples + c.global_batch - 1) / c.global_batch;
      (void)c.accumulation_steps(b.nproc > 0 ? b.nproc : 1);
      if (c.distill.enabled()) throw Error("a scratch run has no teacher (distill is not a scratch option)");
      for (int64_t steps : {plan.steps, plan.steps * b.extend}) {
        (void)read_train_config(scratch_config_node(p, "(the random init)", lr, steps));
      }
    }
    return plan;
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.rfind(p.file + ":", 0) == 0) throw;
    throw Error(b.where + ": baselines.scratch: " + what);
  }
}

void run_scratch_baseline(const PipelineRun& run, const PipelineConfig& p, const std::string& last_chain, RunState& state,
                          const std::string& state_path, HeldoutSet& heldout) {
  const ScratchPlan plan = plan_scratch(p);
  const ScratchBaseline& b = p.scratch;
  const std::string dir = (fs::path(run.run_dir) / "baseline-scratch").string();
  const std::string compared_dir = state.steps.at(plan.compared).entry.at("output").get<std::string>();
  const Checkpoint compared = Checkpoint::open(compared_dir);

  // A record per unit of work, done when its chain (the steps' and what the
  // run itself depends on) is the same. The sweep's list and `extend` are
  // not part of a run's chain: adding a learning rate to the sweep trains
  // only that one (and the longer run again if the best one changes).
  auto chain_of = [&](const std::string& id, double lr, int64_t steps) {
    nlohmann::ordered_json spec = b.spec;
    spec.erase("lr");
    spec.erase("extend");
    spec["id"] = id;
    spec["run_lr"] = lr;
    spec["run_steps"] = steps;
    return chain_hash(last_chain, spec);
  };
  auto done = [&](const std::string& id, const std::string& chain) -> const StepRecord* {
    const StepRecord* rec = state.find_baseline(id);
    if (rec && rec->status == "done" && rec->chain == chain && rec->entry.contains("output") &&
        fs::exists(rec->entry["output"].get<std::string>())) {
      return rec;
    }
    return nullptr;
  };
  auto record = [&](const std::string& id, const std::string& chain, const std::string& status,
                    const nlohmann::ordered_json& entry) {
    StepRecord rec;
    rec.id = id;
    rec.kind = "baseline";
    rec.chain = chain;
    rec.spec = b.spec;
    rec.status = status;
    rec.entry = entry;
    state.put_baseline(rec);
    state.save(state_path);
  };

  const std::string init_dir = (fs::path(dir) / "init").string();
  const std::string init_chain = chain_of(kInitId, 0, 0);
  if (!done(kInitId, init_chain)) {
    std::printf("== baseline scratch: %s from random init (seed %llu)\n", compared.config().summary().c_str(),
                static_cast<unsigned long long>(b.seed));
    std::fflush(stdout);
    fs::create_directories(dir);
    WriterOptions options;
    options.overwrite = true;
    write_initialized_checkpoint(compared.config(), init_dir, b.seed, InitScheme::kMegatron, options,
                                 compared.tokenizer_files(), !run.quiet);
    record(kInitId, init_chain, "done", {{"output", init_dir}});
  }

  auto train = [&](const std::string& id, double lr, int64_t steps, const std::string& run_dir) {
    const std::string chain = chain_of(id, lr, steps);
    if (const StepRecord* rec = done(id, chain)) return rec->entry;
    const StepRecord* previous = state.find_baseline(id);
    const bool resume = previous && previous->status == "started" && previous->chain == chain;
    record(id, chain, "started", nlohmann::ordered_json());
    std::printf("== baseline %s: lr %s, %lld steps of %lld examples (the recovery steps' %lld examples%s)\n", id.c_str(),
                lr_text(lr).c_str(), static_cast<long long>(steps), static_cast<long long>(plan.global_batch),
                static_cast<long long>(plan.recovery_examples),
                steps == plan.steps ? "" : (" x " + std::to_string(b.extend)).c_str());
    std::fflush(stdout);
    const ConfigNode node = scratch_config_node(p, init_dir, lr, steps);
    const TrainingRun t = train_into(run, node, run_dir, b.launcher, b.nproc, resume, "baseline " + id);
    const std::string metrics = (fs::path(run_dir) / "metrics.jsonl").string();
    nlohmann::ordered_json entry;
    entry["lr"] = lr;
    entry["steps"] = steps;
    entry["examples"] = steps * plan.global_batch;
    entry["tokens"] = read_train_log(metrics).tokens;
    entry["heldout_loss"] = heldout.evaluate(t.final_dir, "eval " + id).loss;
    entry["output"] = t.final_dir;
    entry["metrics"] = metrics;
    entry["seconds"] = t.seconds;
    entry["launcher"] = t.launcher;
    record(id, chain, "done", entry);
    std::printf("== baseline %s: held-out loss %.4f\n", id.c_str(), entry["heldout_loss"].get<double>());
    std::fflush(stdout);
    return entry;
  };
  double best_lr = 0, best_loss = INFINITY;
  for (double lr : b.lrs) {
    const auto e = train(run_id(lr), lr, plan.steps, (fs::path(dir) / ("lr-" + lr_text(lr))).string());
    if (e["heldout_loss"].get<double>() < best_loss) {
      best_loss = e["heldout_loss"].get<double>();
      best_lr = lr;
    }
  }
  if (b.extend > 1) train(kExtendedId, best_lr, plan.steps * b.extend, (fs::path(dir) / "extended").string());
}

nlohmann::ordered_json baselines_report(const PipelineConfig& p, const nlohmann::ordered_json& steps,
                                        const RunState& state, const std::string& run_dir) {
  if (!p.scratch.enabled()) return nlohmann::ordered_json();
  const ScratchPlan plan = plan_scratch(p);
  RunFiles files(run_dir);
  const auto& compared = steps.at(plan.compared);
  const bool compared_done = compared["status"] == "done";
  nlohmann::ordered_json j;
  j["compared_step"] = compared["id"];
  j["compared_loss"] = compared_done ? compared["heldout_after"] : nlohmann::ordered_json();
  j["architecture"] = compared["architecture"];
  j["parameters"] = compared["parameters"];
  auto ids = nlohmann::ordered_json::array();
  int64_t recovery_tokens = 0;
  bool recovery_done = true;
  for (size_t i : plan.recovery) {
    ids.push_back(steps[i]["id"]);
    if (steps[i]["status"] == "done" && steps[i].contains("train")) {
      recovery_tokens += steps[i]["train"]["tokens"].get<int64_t>();
    } else {
      recovery_done = false;
    }
  }
  j["recovery_steps"] = ids;
  j["recovery_examples"] = plan.recovery_examples;
  j["recovery_tokens"] = recovery_done ? nlohmann::ordered_json(recovery_tokens) : nlohmann::ordered_json();
  j["steps"] = plan.steps;
  j["global_batch"] = plan.global_batch;
  j["examples"] = plan.steps * plan.global_batch;
  j["lr_sweep"] = p.scratch.lrs;
  j["min_lr_ratio"] = kMinLrRatio;
  j["seed"] = p.scratch.seed;
  j["extend"] = p.scratch.extend;

  auto run_json = [&](const StepRecord* rec, double lr) {
    nlohmann::ordered_json r;
    r["lr"] = lr;
    if (!rec || rec->status != "done") {
      r["status"] = "not run";
      return r;
    }
    const auto& e = rec->entry;
    r["status"] = "done";
    for (const char* key : {"steps", "examples", "tokens", "heldout_loss", "seconds"}) r[key] = e[key];
    r["dir"] = path_relative_to(e["output"].get<std::string>(), run_dir);
    r["metrics"] = path_relative_to(e["metrics"].get<std::string>(), run_dir);
    return r;
  };
  auto sweep = nlohmann::ordered_json::array();
  const StepRecord* best = nullptr;
  for (double lr : p.scratch.lrs) {
    const StepRecord* rec = state.find_baseline(run_id(lr));
    sweep.push_back(run_json(rec, lr));
    if (rec && rec->status == "done" &&
        (!best || rec->entry["heldout_loss"].get<double>() < best->entry["heldout_loss"].get<double>())) {
      best = rec;
    }
  }
  j["sweep"] = sweep;
  j["best"] = best ? run_json(best, best->entry["lr"].get<double>()) : nlohmann::ordered_json();
  const StepRecord* extended = p.scratch.extend > 1 ? state.find_baseline(kExtendedId) : nullptr;
  if (extended && extended->status != "done") extended = nullptr;
  j["extended"] = extended ? run_json(extended, extended->entry["lr"].get<double>()) : nlohmann::ordered_json();

  // The compressed lineage's held-out loss against the recovery tokens it
  // has trained on: each pruning step a jump at the same tokens, each
  // recovery step its evaluations (on the same held-out set). A point that
  // measures the checkpoint the point before it measured is left out: a
  // pruning step's "before" (but the first) and a recovery step's step 0.
  std::vector<std::pair<double, double>> lineage;
  double x = 0;
  bool started = false;
  for (size_t i = 0; i < steps.size() && i <= plan.compared; ++i) {
    const auto& s = steps[i];
    if (s["status"] != "done") break;
    const auto kind = parse_step_kind(s["kind"].get<std::string>());
    if (kind && prunes(*kind)) {
      if (!started && s["heldout_before"].is_number()) lineage.push_back({x, s["heldout_before"].get<double>()});
      if (s["heldout_after"].is_number()) lineage.push_back({x, s["heldout_after"].get<double>()});
      started = true;
    } else if (kind == StepKind::kPretrain && started && s.contains("train")) {
      for (const auto& [t, l] : eval_curve(files, s["train"]["metrics"].get<std::string>())) {
        if (t > 0) lineage.push_back({x + t, l});
      }
      x += s["train"]["tokens"].get<double>();
    }
  }
  j["lineage_curve"] = curve_json(lineage);
  std::vector<std::pair<double, double>> scratch_curve, extended_curve;
  if (best) scratch_curve = eval_curve(files, path_relative_to(best->entry["metrics"].get<std::string>(), run_dir));
  if (extended) extended_curve = eval_curve(files, path_relative_to(extended->entry["metrics"].get<std::string>(), run_dir));
  j["scratch_curve"] = curve_json(scratch_curve);
  j["extended_curve"] = curve_json(extended_curve);

  // The verdict, in numbers and in words.
  j["margin"] = nullptr;
  j["best_at_sweep_edge"] = nullptr;
  j["tokens_to_match"] = nullptr;
  j["tokens_to_match_ratio"] = nullptr;
  j["searched_tokens"] = nullptr;
  std::string verdict = "not measured yet";
  if (best && compared_done && compared["heldout_after"].is_number()) {
    const double target = compared["heldout_after"].get<double>();
    const double scratch_loss = best->entry["heldout_loss"].get<double>();
    const double margin = scratch_loss - target;
    j["margin"] = margin;
    char text[400];
    std::snprintf(text, sizeof(text),
                  "%s: the compressed model, recovered on %s tokens, reaches held-out loss %.4f; the same shape trained "
                  "from scratch on %s tokens reaches %.4f at its best learning rate (%s of %zu tried)",
                  compared["id"].get<std::string>().c_str(), human_count(static_cast<uint64_t>(recovery_tokens)).c_str(),
                  target, human_count(best->entry["tokens"].get<uint64_t>()).c_str(), scratch_loss,
                  lr_text(best->entry["lr"].get<double>()).c_str(), p.scratch.lrs.size());
    verdict = text;
    std::snprintf(text, sizeof(text), margin > 0 ? ": compression wins by %.4f nats." : ": compression does NOT pay here; scratch is better by %.4f nats.",
                  std::fabs(margin));
    verdict += text;
    const double best_lr = best->entry["lr"].get<double>();
    const auto [lo, hi] = std::minmax_element(p.scratch.lrs.begin(), p.scratch.lrs.end());
    if (p.scratch.lrs.size() > 1 && (best_lr == *lo || best_lr == *hi)) {
      verdict += std::string(" The best learning rate is the sweep's ") + (best_lr == *hi ? "largest" : "smallest") +
                 ": the sweep may not bracket scratch's best; add " + (best_lr == *hi ? "larger" : "smaller") + " ones.";
      j["best_at_sweep_edge"] = true;
    } else {
      j["best_at_sweep_edge"] = false;
    }
    const auto& curve = extended ? extended_curve : scratch_curve;
    if (!curve.empty()) {
      j["searched_tokens"] = curve.back().first;
      if (const auto t = tokens_to_reach(curve, target)) {
        j["tokens_to_match"] = *t;
        if (recovery_tokens > 0) j["tokens_to_match_ratio"] = *t / static_cast<double>(recovery_tokens);
        std::snprintf(text, sizeof(text), " Scratch reaches %.4f after %s tokens (%.2fx the recovery tokens).", target,
                      human_count(static_cast<uint64_t>(*t)).c_str(),
                      recovery_tokens > 0 ? *t / static_cast<double>(recovery_tokens) : 0.0);
      } else {
        std::snprintf(text, sizeof(text), " Scratch does not reach %.4f within %s tokens (%.2fx the recovery tokens).",
                      target, human_count(static_cast<uint64_t>(curve.back().first)).c_str(),
                      recovery_tokens > 0 ? curve.back().first / static_cast<double>(recovery_tokens) : 0.0);
      }
      verdict += text;
    }
  }
  j["verdict"] = verdict;
  nlohmann::ordered_json out;
  out["scratch"] = j;
  return out;
}

}  // namespace openba

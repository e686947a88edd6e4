#include "train/trainer.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>

#include "ops/autocast.h"
#include "runtime/checkpoint.h"
#include "ops/cpu_runtime.h"
#include "runtime/evaluation.h"
#include "arch/openba/flops.h"
#include "ops/gemm_yardstick.h"
#include "runtime/model_io.h"
#include "tokenizer/layout.h"
#include "tokenizer/shard_reader.h"
#include "runtime/checkpoint_writer.h"
#include "train/adamw.h"
#include "train/distillation.h"
#include "train/fault_injection.h"
#include "train/optimizer_engine.h"
#include "train/gradient_sync.h"
#include "train/metrics_log.h"
#include "train/training_checkpoint.h"
#include "train/ul2_batch.h"
#include "train/update_rule.h"
#include "train/ul2_stream.h"
#include "util/counter_random.h"
#include "util/error.h"
#include "util/format.h"
#include "util/fs.h"
#include "util/progress.h"
#include "util/resources.h"
#include "util/sha256.h"

namespace openba {
namespace fs = std::filesystem;
namespace {

constexpr uint64_t kDropoutStream = 0xd50;  // + rank: one generator seed stream per rank

// The data side of a run: tokenizer, shard mixture, UL2 streams.
struct DataSetup {
  std::unique_ptr<TokenizerLayout> tokenizer;
  std::unique_ptr<Ul2Stream> train;
  std::unique_ptr<Ul2Stream> heldout;  // null without data.heldout
};

DataSetup open_data(const TrainConfig& c, int64_t model_vocab_rows) {
  DataSetup d;
  if (!fs::exists(fs::path(c.checkpoint) / "spiece.model")) {
    throw Error(c.checkpoint + ": the model checkpoint has no tokenizer (spiece.model); create it with "
                               "openba-init --tokenizer DIR");
  }
  d.tokenizer = std::make_unique<TokenizerLayout>(TokenizerLayout::load(c.checkpoint));
  if (d.tokenizer->vocab_size() > model_vocab_rows) {
    throw Error(c.checkpoint + ": the tokenizer has " + std::to_string(d.tokenizer->vocab_size()) +
                " ids but the model only " + std::to_string(model_vocab_rows) + " embedding rows");
  }
  auto open = [&](const std::string& dir) {
    auto set = std::make_shared<ShardSet>(ShardSet::open(dir));
    set->require_tokenizer(d.tokenizer->fingerprint(), "the model " + c.checkpoint);
    return set;
  };
  std::vector<ShardMixture::Source> sources;
  for (const auto& s : c.train) sources.push_back({open(s.shards), s.weight});
  Ul2Options options;
  options.encoder_tokens = c.encoder_tokens;
  options.decoder_tokens = c.decoder_tokens;
  options.denoisers = c.denoisers;
  options.seed = c.data_seed;
  d.train = std::make_unique<Ul2Stream>(std::make_shared<ShardMixture>(sources), *d.tokenizer, options);
  if (!c.heldout.empty()) {
    Ul2Options h = options;
    h.seed = heldout_stream_seed(c.heldout_seed);  // never moves with data.seed
    d.heldout = std::make_unique<Ul2Stream>(
        std::make_shared<ShardMixture>(std::vector<ShardMixture::Source>{{open(c.heldout), 1.0}}), *d.tokenizer, h);
  }
  return d;
}

double peak_flops(const TrainConfig& c, const torch::Device& device) {
  if (c.peak_tflops > 0) return c.peak_tflops * 1e12;
  if (device.is_cpu()) return measure_gemm_flops(2048, 2);
  return 0;  // unknown accelerator peak: MFU omitted unless logging.peak_tflops is set
}

struct EvalResult {
  std::vector<double> loss;    // per denoiser
  std::vector<int64_t> tokens;
  double overall = 0;
};

// The fixed held-out examples (Ul2Stream::heldout_examples), the same ones
// openba-compress and the pipeline measure with the same eval.seed.
EvalResult evaluate(Seq2SeqModelImpl& model, const Ul2Stream& heldout, const TrainConfig& c, GradientSync& sync,
                    const torch::Device& device) {
  const size_t k = c.denoisers.size();
  const std::vector<Ul2Example> all = heldout.heldout_examples(c.eval_examples_per_denoiser);
  // Ranks split the examples; sums meet in all_reduce.
  std::vector<double> sums(2 * k, 0.0);
  model.eval();
  const size_t per_rank = (all.size() + sync.world_size() - 1) / sync.world_size();
  const size_t begin = std::min(all.size(), per_rank * sync.rank());
  const size_t end = std::min(all.size(), begin + per_rank);
  for (size_t b = begin; b < end; b += static_cast<size_t>(c.eval_batch)) {
    const std::vector<Ul2Example> slice(all.begin() + b, all.begin() + std::min(end, b + c.eval_batch));
    const TrainBatch batch = make_train_batch(slice, model.config, device);
    std::vector<ExampleLoss> losses;
    {
      AutocastScope autocast(training_autocast(device.is_cuda()));
      losses = example_losses(model, batch.batch);
    }
    for (size_t i = 0; i < slice.size(); ++i) {
      sums[slice[i].denoiser] += losses[i].nll_sum;
      sums[k + slice[i].denoiser] += static_cast<double>(losses[i].tokens);
    }
  }
  model.train();
  sync.all_reduce_sum(sums);
  EvalResult r;
  double nll = 0, tokens = 0;
  for (size_t d = 0; d < k; ++d) {
    r.loss.push_back(sums[k + d] > 0 ? sums[d] / sums[k + d] : 0.0);
    r.tokens.push_back(static_cast<int64_t>(sums[k + d]));
    nll += sums[d];
    tokens += sums[k + d];
  }
  r.overall = tokens > 0 ? nll / tokens : 0.0;
  return r;
}

// What one optimizer step adds up across its micro-batches and ranks. It
// packs itself into one vector of doubles for the all-reduce.
struct StepStatistics {
  double targets = 0;        // counted target tokens
  double nll = 0;            // summed NLL of those tokens
  double kd = 0;             // distillation: summed T^2 KL
  double teacher_nll = 0;    // distillation: the teacher's summed NLL
  double real_tokens = 0;    // encoder + decoder tokens that are not padding
  double padded_tokens = 0;  // batch slots
  double flops = 0;          // training FLOPs
  std::vector<double> nll_by_denoiser, tokens_by_denoiser;
  bool bad_loss = false;     // a micro-batch's loss was not finite (this rank)

  explicit StepStatistics(size_t denoisers) : nll_by_denoiser(denoisers, 0.0), tokens_by_denoiser(denoisers, 0.0) {}

  std::vector<double> pack() const {
    std::vector<double> v{targets, nll, kd, teacher_nll, real_tokens, padded_tokens, flops};
    v.insert(v.end(), nll_by_denoiser.begin(), nll_by_denoiser.end());
    v.insert(v.end(), tokens_by_denoiser.begin(), tokens_by_denoiser.end());
    return v;
  }
  void unpack(const std::vector<double>& v) {
    size_t i = 0;
    for (double* field : {&targets, &nll, &kd, &teacher_nll, &real_tokens, &padded_tokens, &flops}) *field = v[i++];
    for (double& x : nll_by_denoiser) x = v[i++];
    for (double& x : tokens_by_denoiser) x = v[i++];
  }
  void all_reduce(GradientSync& sync) {
    std::vector<double> v = pack();
    sync.all_reduce_sum(v);
    unpack(v);
  }
};

// What a step did, for the log.
struct StepOutcome {
  StepStatistics sums;
  double lr = 0;
  double grad_norm = 0;
  bool finite = true;
};

// Throughput over the steps since the last log line.
struct LogWindow {
  Stopwatch clock;
  double tokens = 0, flops = 0, comm = 0, exposed = 0, steps = 0;
  double teacher_seconds = 0;  // in the teacher's forward (host time: CPU only)
  void reset() {
    clock.reset();
    tokens = flops = comm = exposed = steps = teacher_seconds = 0;
  }
};

// One training run, read top to bottom: the constructor checks and loads
// everything, run() takes the steps; train_step, evaluate and
// save_checkpoint are the three things a step can do.
class Trainer {
 public:
  Trainer(const TrainConfig& config, const TrainerRun& run, GradientSync& sync);
  TrainResult run();

 private:
  StepOutcome train_step();
  void log_step(const StepOutcome& outcome);
  // update_mixture: D-UL2 moves the weights after each evaluation except
  // the baseline one before the first step. Returns the overall loss.
  std::optional<double> evaluate_and_log(int64_t step, bool update_mixture);
  void save_checkpoint(int64_t step);
  std::string write_final_model();

  const TrainConfig& c_;
  const TrainerRun& run_;
  GradientSync& sync_;
  const bool leader_;
  torch::Device device_{torch::kCPU};
  int64_t accumulation_ = 1, per_rank_ = 0, decay_steps_ = 0;
  size_t denoisers_ = 0;
  std::optional<Checkpoint> init_;  // the starting checkpoint
  DataSetup data_;
  std::unique_ptr<Teacher> teacher_;
  std::string checkpoints_dir_, resume_from_, last_checkpoint_;
  Seq2SeqModel model_{nullptr};
  AutocastState precision_;
  std::unique_ptr<OptimizerEngine> optimizer_;
  std::vector<std::string> tokenizer_files_;
  TrainerState state_;
  std::unique_ptr<MetricsLog> log_;
  double peak_ = 0;
  LossFunction loss_;
  LogWindow window_;
};


Trainer::Trainer(const TrainConfig& c, const TrainerRun& run, GradientSync& sync)
    : c_(c), run_(run), sync_(sync), leader_(sync.rank() == 0) {
  device_ = torch::Device(c.device);
  // One GPU per local rank unless the configuration names one.
  if (device_.is_cuda() && !device_.has_index()) device_ = torch::Device(torch::kCUDA, sync.local_rank());
  if (device_.is_cpu()) configure_cpu_runtime(c.threads);
  accumulation_ = c.accumulation_steps(sync.world_size());
  per_rank_ = c.global_batch / sync.world_size();
  denoisers_ = c.denoisers.size();
  decay_steps_ = c.decay_steps > 0 ? c.decay_steps : c.steps;

  // Everything that can be wrong is checked before the first step.
  init_.emplace(Checkpoint::open(c.checkpoint));
  data_ = open_data(c, init_->config().vocab_size);
  if (c.dynamic_mixture && c.heldout.empty()) throw Error("ul2.dynamic needs data.heldout (held-out losses drive it)");
  if (c.distill.enabled()) teacher_ = std::make_unique<Teacher>(c.distill, *init_, *data_.tokenizer, run.out_dir, device_);
  checkpoints_dir_ = (fs::path(run.out_dir) / "checkpoints").string();
  resume_from_ = run.resume ? newest_training_checkpoint(checkpoints_dir_) : "";
  if (!run.resume && !newest_training_checkpoint(checkpoints_dir_).empty()) {
    throw Error(run.out_dir + ": already holds training checkpoints (use --resume to continue, or another --out)");
  }
  fs::create_directories(run.out_dir);
  const std::string config_hash = sha256_hex(run.effective_config);
  sync.require_same("the configuration (SHA-256 of the effective YAML)", config_hash);
  if (leader_) StagingDir::write_file_atomically((fs::path(run.out_dir) / "config.yaml").string(), run.effective_config);

  model_ = load_model(*init_, device_);
  set_dropout(*model_, c.dropout);
  set_activation_checkpointing(*model_, c.activation_checkpointing);
  model_->train();
  // fp32 weights, gradients and AdamW state everywhere; on CUDA the forward
  // runs under bf16 autocast (the backward follows its casts).
  precision_ = training_autocast(device_.is_cuda());
  const auto named = unique_named_parameters(*model_);
  AdamWOptions adam;
  adam.beta1 = c.beta1;
  adam.beta2 = c.beta2;
  adam.eps = c.eps;
  adam.weight_decay = c.weight_decay;
  optimizer_ = sync.make_engine(named, make_adamw_rule(adam));
  tokenizer_files_ = init_->tokenizer_files();

  state_.config_hash = config_hash;
  state_.mixture_weights = !c.dynamic_initial.empty() ? c.dynamic_initial : data_.train->initial_weights();
  if (!resume_from_.empty()) {
    state_ = read_training_checkpoint(resume_from_, *model_, *optimizer_);
    if (state_.mixture_weights.size() != c.denoisers.size()) {
      throw Error(resume_from_ + ": checkpoint has " + std::to_string(state_.mixture_weights.size()) +
                  " mixture weights but the configuration " + std::to_string(c.denoisers.size()) + " denoisers");
    }
  }
  log_ = std::make_unique<MetricsLog>(run.out_dir, leader_ && c.tensorboard, resume_from_.empty() ? -1 : state_.step,
                                      leader_);
  if (!resume_from_.empty()) {
    if (state_.config_hash != config_hash) log_->line("note: the configuration changed since " + resume_from_);
    log_->line("resumed from " + resume_from_ + " at step " + std::to_string(state_.step));
  }
  peak_ = peak_flops(c, device_);
  if (leader_) {
    std::string lengths;
    for (size_t d = 0; d < c.denoisers.size(); ++d) {
      lengths += (d ? ", " : "") + c.denoisers[d].name + " L=" + std::to_string(data_.train->raw_lengths()[d]);
    }
    log_->line("model " + init_->config().summary() + "; " + std::to_string(c.steps) + " steps of " +
               std::to_string(c.global_batch) + " examples (" + std::to_string(sync.world_size()) +
               " rank(s), micro " + std::to_string(c.micro_batch) + ", accumulation " + std::to_string(accumulation_) +
               "); budgets " + std::to_string(c.encoder_tokens) + "/" + std::to_string(c.decoder_tokens) + ": " +
               lengths);
    log_->line("optimizer: " + optimizer_->describe() + "; per rank: optimizer state " +
               human_bytes(optimizer_->state_bytes()) + ", gradients " + human_bytes(optimizer_->gradient_bytes()));
    if (teacher_) log_->line("distillation from teacher " + teacher_->describe());
  }
  loss_ = inject_nonfinite_losses(
      [](Seq2SeqModelImpl& model, const Seq2SeqBatch& batch, const DistillationInputs* distill) {
        return seq2seq_loss(model, batch, distill);
      },
      c.nonfinite_at_steps, [this] { return state_.step + 1; });
}

TrainResult Trainer::run() {
  window_.reset();
  Progress progress("train", static_cast<uint64_t>(c_.steps), "steps", leader_ && !run_.quiet);
  progress.advance(static_cast<uint64_t>(state_.step));
  if (resume_from_.empty() && state_.step < c_.steps) {
    evaluate_and_log(0, false);  // the starting point, so the held-out curve shows what training changed
    window_.reset();
  }
  while (state_.step < c_.steps) {
    const StepOutcome outcome = train_step();
    progress.advance(1);
    if (leader_ && (state_.step % c_.log_every == 0 || state_.step == c_.steps) && outcome.finite) log_step(outcome);
    if (c_.eval_every > 0 && state_.step % c_.eval_every == 0 && state_.step < c_.steps) {
      evaluate_and_log(state_.step, true);
    }
    if (c_.checkpoint_every > 0 && state_.step % c_.checkpoint_every == 0 && state_.step < c_.steps) {
      save_checkpoint(state_.step);
    }
  }
  progress.finish();
  TrainResult result;
  result.heldout_loss = evaluate_and_log(state_.step, true);
  if (last_checkpoint_.empty() ||
      last_checkpoint_ != (fs::path(checkpoints_dir_) / checkpoint_dir_name(state_.step)).string()) {
    save_checkpoint(state_.step);
  }
  result.final_dir = write_final_model();
  result.steps = state_.step;
  result.tokens = state_.tokens;
  log_->flush();
  return result;
}

StepOutcome Trainer::train_step() {
  const int64_t step = state_.step;  // 0-based index of the step being taken
  sync_.set_step(step + 1);
  StepOutcome out{StepStatistics(denoisers_)};
  StepStatistics& sums = out.sums;
  out.lr = learning_rate(step, c_.lr, c_.min_lr, c_.warmup_steps, decay_steps_);
  // Dropout draws from a generator seeded per (seed, rank, step): a resume
  // at any step, on any number of ranks, needs no generator state.
  torch::manual_seed(counter_hash(c_.seed, kDropoutStream + static_cast<uint64_t>(sync_.rank()),
                                  static_cast<uint64_t>(step)));
  const uint64_t first = state_.examples + static_cast<uint64_t>(per_rank_) * sync_.rank();
  std::vector<Ul2Example> examples;
  for (int64_t j = 0; j < per_rank_; ++j) examples.push_back(data_.train->example(first + j, state_.mixture_weights));
  // The gradient is a sum over examples, so micro-batches may group examples
  // of similar shape: less padding (stable sort: deterministic).
  std::stable_sort(examples.begin(), examples.end(), [](const Ul2Example& a, const Ul2Example& b) {
    if (a.labels.size() != b.labels.size()) return a.labels.size() < b.labels.size();
    return a.input_ids.size() < b.input_ids.size();
  });

  for (const auto& e : examples) sums.targets += static_cast<double>(e.labels.size());
  std::vector<double> targets{sums.targets};
  sync_.all_reduce_sum(targets);
  const double global_targets = targets[0];

  optimizer_->zero_grad();
  // Statistics stay on the device until the step's last backward is
  // queued, then come back in one copy: no micro-batch waits for the GPU.
  std::vector<torch::Tensor> device_stats;  // per micro-batch: [loss, nll, kd, teacher nll, per-example nll...]
  std::vector<TrainBatch> step_batches;
  step_batches.reserve(static_cast<size_t>(accumulation_));
  for (int64_t a = 0; a < accumulation_; ++a) {
    const std::vector<Ul2Example> micro(examples.begin() + a * c_.micro_batch,
                                        examples.begin() + (a + 1) * c_.micro_batch);
    step_batches.push_back(make_train_batch(micro, model_->config, device_));
    const TrainBatch& batch = step_batches.back();
    TeacherTargets teacher_targets;
    DistillationInputs distill;
    if (teacher_) {
      Stopwatch teacher_clock;
      teacher_targets = teacher_->targets(batch.batch);
      window_.teacher_seconds += teacher_clock.seconds();
      distill = {&teacher_targets, c_.distill.alpha, c_.distill.temperature};
    }
    LossParts parts;
    {
      AutocastScope autocast(precision_);
      parts = loss_(*model_, batch.batch, teacher_ ? &distill : nullptr);
    }
    const torch::Tensor loss = parts.objective / global_targets;
    const bool last_micro_batch = a + 1 == accumulation_;
    optimizer_->begin_backward(last_micro_batch);
    loss.backward();
    optimizer_->end_backward(last_micro_batch);
    const auto scalar = [&](const torch::Tensor& t) {
      return t.defined() ? t.detach().to(torch::kDouble).reshape({1}) : torch::zeros({1}, parts.example_nll.options());
    };
    device_stats.push_back(torch::cat({scalar(loss), scalar(parts.nll_sum), scalar(parts.kd_sum),
                                       scalar(parts.teacher_nll_sum), parts.example_nll}));
    sums.real_tokens += static_cast<double>(batch.real_tokens);
    sums.padded_tokens += static_cast<double>(batch.padded_tokens);
    sums.flops += 3.0 * forward_flops_per_sequence(model_->config, batch.batch.input_ids.size(1),
                                                   batch.batch.labels.size(1)) *
                  static_cast<double>(micro.size());
  }
  // The step's one device-to-host copy. Summed on the host in micro-batch
  // order, in double, as the values were produced.
  const torch::Tensor host_stats = torch::cat(device_stats).cpu();
  const double* stat = host_stats.data_ptr<double>();
  for (const TrainBatch& batch : step_batches) {
    if (!std::isfinite(stat[0]) || !std::isfinite(stat[1])) sums.bad_loss = true;
    sums.nll += stat[1];
    sums.kd += stat[2];
    sums.teacher_nll += stat[3];
    stat += 4;
    for (size_t i = 0; i < batch.denoisers.size(); ++i) {
      sums.nll_by_denoiser[batch.denoisers[i]] += stat[i];
      sums.tokens_by_denoiser[batch.denoisers[i]] += static_cast<double>(batch.example_targets[i]);
    }
    stat += batch.denoisers.size();
  }
  sums.all_reduce(sync_);
  out.grad_norm = optimizer_->grad_norm();
  out.finite = !sums.bad_loss && std::isfinite(sums.nll) && std::isfinite(sums.kd) && std::isfinite(out.grad_norm);
  if (!out.finite) {
    ++state_.nonfinite_total;
    ++state_.nonfinite_in_a_row;
    const auto bad = optimizer_->nonfinite_gradients();
    if (leader_) {
      log_->line("step " + std::to_string(step + 1) + ": non-finite loss or gradient, step skipped (" +
                 std::to_string(state_.nonfinite_in_a_row) + " in a row" +
                 (bad.empty() ? "" : "; first bad gradient: " + bad.front()) + ")");
      log_->record(step + 1, {{"skipped", "non-finite loss or gradient"}, {"nonfinite_total", state_.nonfinite_total}});
    }
    if (state_.nonfinite_in_a_row >= c_.max_nonfinite_in_a_row) {
      throw Error("aborting at step " + std::to_string(step + 1) + ": " + std::to_string(state_.nonfinite_in_a_row) +
                  " steps in a row had a non-finite loss or gradient (loss sum " + std::to_string(sums.nll) +
                  ", gradient norm " + std::to_string(out.grad_norm) + "; " + std::to_string(bad.size()) +
                  " parameters with non-finite gradients" + (bad.empty() ? "" : ", e.g. " + bad.front()) +
                  "). Lower trainer.lr or check the data; trainer.max_nonfinite_in_a_row sets the limit.");
    }
  } else {
    state_.nonfinite_in_a_row = 0;
    if (c_.grad_clip > 0 && out.grad_norm > c_.grad_clip) {
      optimizer_->scale_gradients(c_.grad_clip / (out.grad_norm + 1e-6));
    }
    optimizer_->step(out.lr);
  }
  state_.step += 1;
  state_.examples += static_cast<uint64_t>(c_.global_batch);
  state_.tokens += static_cast<uint64_t>(sums.real_tokens);
  window_.tokens += sums.real_tokens;
  window_.flops += sums.flops;
  const CommTimings comm = optimizer_->take_timings();
  window_.comm += comm.comm_seconds;
  window_.exposed += comm.exposed_seconds;
  window_.steps += 1;
  return out;
}

void Trainer::log_step(const StepOutcome& outcome) {
  const StepStatistics& sums = outcome.sums;
  const double seconds = window_.clock.seconds();
  nlohmann::ordered_json j;
  const double ce = sums.nll / sums.targets;
  const double objective = teacher_ ? (1.0 - c_.distill.alpha) * ce + c_.distill.alpha * sums.kd / sums.targets : ce;
  j["tokens"] = state_.tokens;
  j["loss"] = objective;
  if (teacher_) {
    // Per counted target token: loss = (1 - alpha) * ce_loss + alpha * kd_loss.
    j["ce_loss"] = ce;
    j["kd_loss"] = sums.kd / sums.targets;
    j["teacher_ce"] = sums.teacher_nll / sums.targets;
  }
  nlohmann::ordered_json per;
  for (size_t d = 0; d < denoisers_; ++d) {
    if (sums.tokens_by_denoiser[d] > 0) per[c_.denoisers[d].name] = sums.nll_by_denoiser[d] / sums.tokens_by_denoiser[d];
  }
  j["loss_by_denoiser"] = per;
  j["lr"] = outcome.lr;
  j["grad_norm"] = outcome.grad_norm;
  j["tokens_per_s"] = window_.tokens / seconds;
  if (peak_ > 0) j["mfu"] = window_.flops / seconds / peak_;
  j["padding"] = 1.0 - sums.real_tokens / sums.padded_tokens;
  if (teacher_ && device_.is_cpu()) j["teacher_share"] = window_.teacher_seconds / seconds;  // of the step time
  j["peak_memory_bytes"] = peak_rss_bytes();
  if (sync_.world_size() > 1) {
    // Rank 0's view: seconds per step a collective was in flight, and of
    // those the seconds backward/optimizer waited for one.
    j["comm_s"] = window_.comm / window_.steps;
    j["comm_exposed_s"] = window_.exposed / window_.steps;
    j["step_s"] = seconds / window_.steps;
    j["ranks"] = sync_.world_size();
  }
  if (state_.nonfinite_total) j["nonfinite_total"] = state_.nonfinite_total;
  log_->record(state_.step, j);
  char text[200];
  std::snprintf(text, sizeof(text), "step %lld/%lld: loss %.4f, lr %.3g, grad norm %.3g, %.0f tokens/s",
                static_cast<long long>(state_.step), static_cast<long long>(c_.steps), objective, outcome.lr,
                outcome.grad_norm, window_.tokens / seconds);
  if (!progress_is_terminal()) log_->line(text);
  window_.reset();
}

std::optional<double> Trainer::evaluate_and_log(int64_t step, bool update_mixture) {
  if (!data_.heldout) return std::nullopt;
  const EvalResult r = evaluate(*model_, *data_.heldout, c_, sync_, device_);
  nlohmann::ordered_json j;
  nlohmann::ordered_json per;
  for (size_t d = 0; d < denoisers_; ++d) per[c_.denoisers[d].name] = r.loss[d];
  j["eval_loss"] = r.overall;
  j["eval_loss_by_denoiser"] = per;
  j["tokens"] = state_.tokens;  // training tokens seen when the held-out loss was measured
  if (c_.dynamic_mixture && update_mixture) {
    state_.mixture_weights = dynamic_mixture_update(state_.mixture_weights, r.loss, c_.dynamic_targets, c_.dynamic_c);
    nlohmann::ordered_json w;
    for (size_t d = 0; d < denoisers_; ++d) w[c_.denoisers[d].name] = state_.mixture_weights[d];
    j["mixture_weights"] = w;
  }
  if (leader_) {
    log_->record(step, j);
    char text[128];
    std::snprintf(text, sizeof(text), "step %lld: held-out loss %.4f", static_cast<long long>(step), r.overall);
    log_->line(text);
  }
  return r.overall;
}

// Every rank writes its part of the optimizer state into rank 0's staging
// directory (on a filesystem all ranks share); rank 0 renames it into place
// only when every part is there.
void Trainer::save_checkpoint(int64_t step) {
  last_checkpoint_ = (fs::path(checkpoints_dir_) / checkpoint_dir_name(step)).string();
  std::unique_ptr<CheckpointWriter> writer;
  if (leader_) writer = begin_training_checkpoint(last_checkpoint_, *model_, tokenizer_files_);
  const std::string staging =
      sync_.broadcast_string("checkpoint-" + std::to_string(step), leader_ ? writer->staging_path() : "");
  if (!fs::is_directory(staging)) {
    throw Error("rank " + std::to_string(sync_.rank()) + ": cannot see rank 0's checkpoint staging directory " +
                staging + " (the run directory must be on a filesystem every rank shares)");
  }
  optimizer_->write_state(staging);
  sync_.barrier("writing the checkpoint of step " + std::to_string(step));
  if (leader_) {
    finish_training_checkpoint(*writer, state_, *optimizer_, sync_.world_size());
    prune_training_checkpoints(checkpoints_dir_, c_.keep_checkpoints);
  }
}

std::string Trainer::write_final_model() {
  const std::string final_dir = (fs::path(run_.out_dir) / "final").string();
  if (leader_) {
    const DType dtype =
        c_.save_dtype.empty() ? init_->config().dtype : parse_float_dtype_flag(c_.save_dtype, "trainer.save_dtype");
    WriterOptions options;
    options.overwrite = true;
    options.protected_paths = {c_.checkpoint};
    save_model(*model_, final_dir, dtype, options, tokenizer_files_);
    log_->line("final model: " + final_dir);
  }
  return final_dir;
}

}  // namespace

TrainResult run_training(const TrainConfig& config, const TrainerRun& run, GradientSync& sync) {
  Trainer trainer(config, run, sync);
  return trainer.run();
}

void write_preview(const TrainConfig& c, int64_t n, const std::string& path) {
  const Checkpoint init = Checkpoint::open(c.checkpoint);
  DataSetup data = open_data(c, init.config().vocab_size);
  const auto weights = !c.dynamic_initial.empty() ? c.dynamic_initial : data.train->initial_weights();
  std::string out;
  for (int64_t i = 0; i < n; ++i) {
    const Ul2Example ex = data.train->example(static_cast<uint64_t>(i), weights);
    const std::vector<int> input(ex.input_ids.begin(), ex.input_ids.end());
    const std::vector<int> labels(ex.labels.begin(), ex.labels.end());
    nlohmann::ordered_json j;
    j["index"] = i;
    j["denoiser"] = c.denoisers[ex.denoiser].name;
    j["input_ids"] = ex.input_ids;
    j["labels"] = ex.labels;
    j["input_text"] = data.tokenizer->decode_pieces(input);
    j["target_text"] = data.tokenizer->decode_pieces(labels);
    out += j.dump() + "\n";
  }
  if (path == "-") {
    std::cout << out;
  } else {
    StagingDir::write_file_atomically(path, out);
  }
}

}  // namespace openba

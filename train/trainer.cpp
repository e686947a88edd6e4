#include "train/trainer.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "model/autocast.h"
#include "model/checkpoint.h"
#include "model/cpu_runtime.h"
#include "model/evaluation.h"
#include "model/flops.h"
#include "model/gemm_yardstick.h"
#include "model/model_io.h"
#include "tokenizer/layout.h"
#include "tokenizer/shard_reader.h"
#include "model/checkpoint_writer.h"
#include "train/adamw.h"
#include "train/distillation.h"
#include "train/optimizer_engine.h"
#include "train/gradient_sync.h"
#include "train/metrics_log.h"
#include "train/training_checkpoint.h"
#include "train/ul2_batch.h"
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
EvalResult evaluate(OpenBAModelImpl& model, const Ul2Stream& heldout, const TrainConfig& c, GradientSync& sync,
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

// What one optimizer step adds up across its micro-batches and ranks.
struct StepSums {
  double targets = 0;        // counted target tokens
  double nll = 0;            // summed NLL of those tokens
  double kd = 0;             // distillation: summed T^2 KL
  double teacher_nll = 0;    // distillation: the teacher's summed NLL
  double real_tokens = 0;    // encoder + decoder tokens that are not padding
  double padded_tokens = 0;  // batch slots
  double flops = 0;          // training FLOPs
  std::vector<double> nll_by_denoiser, tokens_by_denoiser;

  explicit StepSums(size_t denoisers) : nll_by_denoiser(denoisers, 0.0), tokens_by_denoiser(denoisers, 0.0) {}

  void all_reduce(GradientSync& sync) {
    std::vector<double> v{targets, nll, kd, teacher_nll, real_tokens, padded_tokens, flops};
    v.insert(v.end(), nll_by_denoiser.begin(), nll_by_denoiser.end());
    v.insert(v.end(), tokens_by_denoiser.begin(), tokens_by_denoiser.end());
    sync.all_reduce_sum(v);
    size_t i = 0;
    for (double* field : {&targets, &nll, &kd, &teacher_nll, &real_tokens, &padded_tokens, &flops}) *field = v[i++];
    for (double& x : nll_by_denoiser) x = v[i++];
    for (double& x : tokens_by_denoiser) x = v[i++];
  }
};

}  // namespace

std::string run_training(const TrainConfig& c, const TrainerRun& run, GradientSync& sync) {
  const bool leader = sync.rank() == 0;
  torch::Device device(c.device);
  // One GPU per local rank unless the configuration names one.
  if (device.is_cuda() && !device.has_index()) device = torch::Device(torch::kCUDA, sync.local_rank());
  if (device.is_cpu()) configure_cpu_runtime(c.threads);
  const int64_t accumulation = c.accumulation_steps(sync.world_size());
  const int64_t per_rank = c.global_batch / sync.world_size();

  // Everything that can be wrong is checked before the first step.
  const Checkpoint init = Checkpoint::open(c.checkpoint);
  DataSetup data = open_data(c, init.config().vocab_size);
  if (c.dynamic_mixture && c.heldout.empty()) throw Error("ul2.dynamic needs data.heldout (held-out losses drive it)");
  std::unique_ptr<Teacher> teacher;
  if (c.distill.enabled()) teacher = std::make_unique<Teacher>(c.distill, init, *data.tokenizer, run.out_dir, device);
  const std::string checkpoints_dir = (fs::path(run.out_dir) / "checkpoints").string();
  const std::string resume_from = run.resume ? newest_training_checkpoint(checkpoints_dir) : "";
  if (!run.resume && !newest_training_checkpoint(checkpoints_dir).empty()) {
    throw Error(run.out_dir + ": already holds training checkpoints (use --resume to continue, or another --out)");
  }
  fs::create_directories(run.out_dir);
  const std::string config_hash = sha256_hex(run.effective_config);
  sync.require_same("the configuration (SHA-256 of the effective YAML)", config_hash);
  if (leader) StagingDir::write_file_atomically((fs::path(run.out_dir) / "config.yaml").string(), run.effective_config);

  OpenBAModel model = load_model(init, device);
  set_dropout(*model, c.dropout);
  set_activation_checkpointing(*model, c.activation_checkpointing);
  model->train();
  // fp32 weights, gradients and AdamW state everywhere; on CUDA the forward
  // runs under bf16 autocast (the backward follows its casts).
  const AutocastState precision = training_autocast(device.is_cuda());
  const auto named = unique_named_parameters(*model);
  AdamWOptions adam;
  adam.beta1 = c.beta1;
  adam.beta2 = c.beta2;
  adam.eps = c.eps;
  adam.weight_decay = c.weight_decay;
  std::unique_ptr<OptimizerEngine> optimizer = sync.make_engine(named, adam);
  const std::vector<std::string> tokenizer_files = init.tokenizer_files();

  TrainerState state;
  state.config_hash = config_hash;
  state.mixture_weights = !c.dynamic_initial.empty() ? c.dynamic_initial : data.train->initial_weights();
  if (!resume_from.empty()) {
    state = read_training_checkpoint(resume_from, *model, *optimizer);
    if (state.mixture_weights.size() != c.denoisers.size()) {
      throw Error(resume_from + ": checkpoint has " + std::to_string(state.mixture_weights.size()) +
                  " mixture weights but the configuration " + std::to_string(c.denoisers.size()) + " denoisers");
    }
  }
  MetricsLog log(run.out_dir, leader && c.tensorboard, resume_from.empty() ? -1 : state.step, leader);
  if (!resume_from.empty()) {
    if (state.config_hash != config_hash) log.line("note: the configuration changed since " + resume_from);
    log.line("resumed from " + resume_from + " at step " + std::to_string(state.step));
  }
  const double peak = peak_flops(c, device);
  if (leader) {
    std::string lengths;
    for (size_t d = 0; d < c.denoisers.size(); ++d) {
      lengths += (d ? ", " : "") + c.denoisers[d].name + " L=" + std::to_string(data.train->raw_lengths()[d]);
    }
    log.line("model " + init.config().summary() + "; " + std::to_string(c.steps) + " steps of " +
             std::to_string(c.global_batch) + " examples (" + std::to_string(sync.world_size()) + " rank(s), micro " +
             std::to_string(c.micro_batch) + ", accumulation " + std::to_string(accumulation) + "); budgets " +
             std::to_string(c.encoder_tokens) + "/" + std::to_string(c.decoder_tokens) + ": " + lengths);
    log.line("optimizer: " + optimizer->describe() + "; per rank: optimizer state " +
             human_bytes(optimizer->state_bytes()) + ", gradients " + human_bytes(optimizer->gradient_bytes()));
    if (teacher) log.line("distillation from teacher " + teacher->describe());
  }

  const int64_t decay_steps = c.decay_steps > 0 ? c.decay_steps : c.steps;
  const size_t k = c.denoisers.size();
  Progress progress("train", static_cast<uint64_t>(c.steps), "steps", leader && !run.quiet);
  progress.advance(static_cast<uint64_t>(state.step));
  Stopwatch window;
  double window_tokens = 0, window_flops = 0, window_comm = 0, window_exposed = 0, window_steps = 0;
  double window_teacher_s = 0;  // seconds in the teacher's forward (host time: CPU only)
  std::string last_checkpoint;

  // update_mixture: D-UL2 moves the weights after each evaluation except
  // the baseline one before the first step.
  auto run_eval = [&](int64_t step, bool update_mixture) {
    if (!data.heldout) return;
    const EvalResult r = evaluate(*model, *data.heldout, c, sync, device);
    nlohmann::ordered_json j;
    nlohmann::ordered_json per;
    for (size_t d = 0; d < k; ++d) per[c.denoisers[d].name] = r.loss[d];
    j["eval_loss"] = r.overall;
    j["eval_loss_by_denoiser"] = per;
    j["tokens"] = state.tokens;  // training tokens seen when the held-out loss was measured
    if (c.dynamic_mixture && update_mixture) {
      state.mixture_weights = dynamic_mixture_update(state.mixture_weights, r.loss, c.dynamic_targets, c.dynamic_c);
      nlohmann::ordered_json w;
      for (size_t d = 0; d < k; ++d) w[c.denoisers[d].name] = state.mixture_weights[d];
      j["mixture_weights"] = w;
    }
    if (leader) {
      log.record(step, j);
      char text[128];
      std::snprintf(text, sizeof(text), "step %lld: held-out loss %.4f", static_cast<long long>(step), r.overall);
      log.line(text);
    }
  };
  // Every rank writes its part of the optimizer state into rank 0's staging
  // directory (on a filesystem all ranks share); rank 0 renames it into
  // place only when every part is there.
  auto save = [&](int64_t step) {
    last_checkpoint = (fs::path(checkpoints_dir) / checkpoint_dir_name(step)).string();
    std::unique_ptr<CheckpointWriter> writer;
    if (leader) writer = begin_training_checkpoint(last_checkpoint, *model, tokenizer_files);
    const std::string staging =
        sync.broadcast_string("checkpoint-" + std::to_string(step), leader ? writer->staging_path() : "");
    if (!fs::is_directory(staging)) {
      throw Error("rank " + std::to_string(sync.rank()) + ": cannot see rank 0's checkpoint staging directory " +
                  staging + " (the run directory must be on a filesystem every rank shares)");
    }
    optimizer->write_state(staging);
    sync.barrier("writing the checkpoint of step " + std::to_string(step));
    if (leader) {
      finish_training_checkpoint(*writer, state, *optimizer, sync.world_size());
      prune_training_checkpoints(checkpoints_dir, c.keep_checkpoints);
    }
  };

  if (resume_from.empty() && state.step < c.steps) {
    run_eval(0, false);  // the starting point, so the held-out curve shows what training changed
    window.reset();
  }
  while (state.step < c.steps) {
    const int64_t step = state.step;  // 0-based index of the step being taken
    sync.set_step(step + 1);
    const double lr = learning_rate(step, c.lr, c.min_lr, c.warmup_steps, decay_steps);
    // Dropout draws from a generator seeded per (seed, rank, step): a resume
    // at any step, on any number of ranks, needs no generator state.
    torch::manual_seed(counter_hash(c.seed, kDropoutStream + static_cast<uint64_t>(sync.rank()),
                                    static_cast<uint64_t>(step)));
    const uint64_t first = state.examples + static_cast<uint64_t>(per_rank) * sync.rank();
    std::vector<Ul2Example> examples;
    for (int64_t j = 0; j < per_rank; ++j) examples.push_back(data.train->example(first + j, state.mixture_weights));
    // The gradient is a sum over examples, so micro-batches may group examples
    // of similar shape: less padding (stable sort: deterministic).
    std::stable_sort(examples.begin(), examples.end(), [](const Ul2Example& a, const Ul2Example& b) {
      if (a.labels.size() != b.labels.size()) return a.labels.size() < b.labels.size();
      return a.input_ids.size() < b.input_ids.size();
    });

    StepSums sums(k);
    for (const auto& e : examples) sums.targets += static_cast<double>(e.labels.size());
    std::vector<double> targets{sums.targets};
    sync.all_reduce_sum(targets);
    const double global_targets = targets[0];

    optimizer->zero_grad();
    // Statistics stay on the device until the step's last backward is
    // queued, then come back in one copy: no micro-batch waits for the GPU.
    std::vector<torch::Tensor> device_stats;  // per micro-batch: [loss, nll, kd, teacher nll, per-example nll...]
    std::vector<TrainBatch> step_batches;
    step_batches.reserve(static_cast<size_t>(accumulation));
    for (int64_t a = 0; a < accumulation; ++a) {
      const std::vector<Ul2Example> micro(examples.begin() + a * c.micro_batch,
                                          examples.begin() + (a + 1) * c.micro_batch);
      step_batches.push_back(make_train_batch(micro, model->config, device));
      const TrainBatch& batch = step_batches.back();
      TeacherTargets teacher_targets;
      DistillationInputs distill;
      if (teacher) {
        Stopwatch teacher_clock;
        teacher_targets = teacher->targets(batch.batch);
        window_teacher_s += teacher_clock.seconds();
        distill = {&teacher_targets, c.distill.alpha, c.distill.temperature};
      }
      LossParts parts;
      {
        AutocastScope autocast(precision);
        parts = seq2seq_loss(*model, batch.batch, teacher ? &distill : nullptr);
      }
      torch::Tensor loss = parts.objective / global_targets;
      if (std::find(c.nonfinite_at_steps.begin(), c.nonfinite_at_steps.end(), static_cast<double>(step + 1)) !=
          c.nonfinite_at_steps.end()) {
        loss = loss * std::numeric_limits<double>::quiet_NaN();  // debug.nonfinite_at_steps
      }
      const bool last_micro_batch = a + 1 == accumulation;
      optimizer->begin_backward(last_micro_batch);
      loss.backward();
      optimizer->end_backward(last_micro_batch);
      const auto scalar = [&](const torch::Tensor& t) {
        return t.defined() ? t.detach().to(torch::kDouble).reshape({1}) : torch::zeros({1}, parts.example_nll.options());
      };
      device_stats.push_back(torch::cat({scalar(loss), scalar(parts.nll_sum), scalar(parts.kd_sum),
                                         scalar(parts.teacher_nll_sum), parts.example_nll}));
      sums.real_tokens += static_cast<double>(batch.real_tokens);
      sums.padded_tokens += static_cast<double>(batch.padded_tokens);
      sums.flops += 3.0 * forward_flops_per_sequence(model->config, batch.batch.input_ids.size(1),
                                                     batch.batch.labels.size(1)) *
                    static_cast<double>(micro.size());
    }
    // The step's one device-to-host copy. Summed on the host in micro-batch
    // order, in double, as the values were produced.
    const torch::Tensor host_stats = torch::cat(device_stats).cpu();
    const double* stat = host_stats.data_ptr<double>();
    bool bad_loss = false;
    for (const TrainBatch& batch : step_batches) {
      if (!std::isfinite(stat[0]) || !std::isfinite(stat[1])) bad_loss = true;
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
    sums.all_reduce(sync);
    const double grad_norm = optimizer->grad_norm();
    const bool finite = !bad_loss && std::isfinite(sums.nll) && std::isfinite(sums.kd) && std::isfinite(grad_norm);
    if (!finite) {
      ++state.nonfinite_total;
      ++state.nonfinite_in_a_row;
      const auto bad = optimizer->nonfinite_gradients();
      if (leader) {
        log.line("step " + std::to_string(step + 1) + ": non-finite loss or gradient, step skipped (" +
                 std::to_string(state.nonfinite_in_a_row) + " in a row" +
                 (bad.empty() ? "" : "; first bad gradient: " + bad.front()) + ")");
        log.record(step + 1, {{"skipped", "non-finite loss or gradient"}, {"nonfinite_total", state.nonfinite_total}});
      }
      if (state.nonfinite_in_a_row >= c.max_nonfinite_in_a_row) {
        throw Error("aborting at step " + std::to_string(step + 1) + ": " + std::to_string(state.nonfinite_in_a_row) +
                    " steps in a row had a non-finite loss or gradient (loss sum " + std::to_string(sums.nll) +
                    ", gradient norm " + std::to_string(grad_norm) + "; " + std::to_string(bad.size()) +
                    " parameters with non-finite gradients" + (bad.empty() ? "" : ", e.g. " + bad.front()) +
                    "). Lower trainer.lr or check the data; trainer.max_nonfinite_in_a_row sets the limit.");
      }
    } else {
      state.nonfinite_in_a_row = 0;
      if (c.grad_clip > 0 && grad_norm > c.grad_clip) {
        optimizer->scale_gradients(c.grad_clip / (grad_norm + 1e-6));
      }
      optimizer->step(lr);
    }
    state.step += 1;
    state.examples += static_cast<uint64_t>(c.global_batch);
    state.tokens += static_cast<uint64_t>(sums.real_tokens);
    window_tokens += sums.real_tokens;
    window_flops += sums.flops;
    const CommTimings comm = optimizer->take_timings();
    window_comm += comm.comm_seconds;
    window_exposed += comm.exposed_seconds;
    window_steps += 1;
    progress.advance(1);

    if (leader && (state.step % c.log_every == 0 || state.step == c.steps) && finite) {
      const double seconds = window.seconds();
      nlohmann::ordered_json j;
      const double ce = sums.nll / sums.targets;
      const double objective =
          teacher ? (1.0 - c.distill.alpha) * ce + c.distill.alpha * sums.kd / sums.targets : ce;
      j["tokens"] = state.tokens;
      j["loss"] = objective;
      if (teacher) {
        // Per counted target token: loss = (1 - alpha) * ce_loss + alpha * kd_loss.
        j["ce_loss"] = ce;
        j["kd_loss"] = sums.kd / sums.targets;
        j["teacher_ce"] = sums.teacher_nll / sums.targets;
      }
      nlohmann::ordered_json per;
      for (size_t d = 0; d < k; ++d) {
        if (sums.tokens_by_denoiser[d] > 0) per[c.denoisers[d].name] = sums.nll_by_denoiser[d] / sums.tokens_by_denoiser[d];
      }
      j["loss_by_denoiser"] = per;
      j["lr"] = lr;
      j["grad_norm"] = grad_norm;
      j["tokens_per_s"] = window_tokens / seconds;
      if (peak > 0) j["mfu"] = window_flops / seconds / peak;
      j["padding"] = 1.0 - sums.real_tokens / sums.padded_tokens;
      if (teacher && device.is_cpu()) j["teacher_share"] = window_teacher_s / seconds;  // of the step time
      j["peak_memory_bytes"] = peak_rss_bytes();
      if (sync.world_size() > 1) {
        // Rank 0's view: seconds per step a collective was in flight, and of
        // those the seconds backward/optimizer waited for one.
        j["comm_s"] = window_comm / window_steps;
        j["comm_exposed_s"] = window_exposed / window_steps;
        j["step_s"] = seconds / window_steps;
        j["ranks"] = sync.world_size();
      }
      if (state.nonfinite_total) j["nonfinite_total"] = state.nonfinite_total;
      log.record(state.step, j);
      char text[200];
      std::snprintf(text, sizeof(text), "step %lld/%lld: loss %.4f, lr %.3g, grad norm %.3g, %.0f tokens/s",
                    static_cast<long long>(state.step), static_cast<long long>(c.steps), objective, lr,
                    grad_norm, window_tokens / seconds);
      if (!progress_is_terminal()) log.line(text);
      window.reset();
      window_tokens = window_flops = window_comm = window_exposed = window_steps = window_teacher_s = 0;
    }
    if (c.eval_every > 0 && state.step % c.eval_every == 0 && state.step < c.steps) run_eval(state.step, true);
    if (c.checkpoint_every > 0 && state.step % c.checkpoint_every == 0 && state.step < c.steps) save(state.step);
  }
  progress.finish();
  run_eval(state.step, true);
  if (last_checkpoint.empty() || last_checkpoint != (fs::path(checkpoints_dir) / checkpoint_dir_name(state.step)).string()) {
    save(state.step);
  }
  const std::string final_dir = (fs::path(run.out_dir) / "final").string();
  if (leader) {
    const DType dtype = c.save_dtype.empty() ? init.config().dtype : parse_float_dtype_flag(c.save_dtype, "trainer.save_dtype");
    WriterOptions options;
    options.overwrite = true;
    options.protected_paths = {c.checkpoint};
    save_model(*model, final_dir, dtype, options, tokenizer_files);
    log.line("final model: " + final_dir);
  }
  log.flush();
  return final_dir;
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

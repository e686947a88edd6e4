#include "train/train_config.h"

#include <cmath>

#include "util/config_node.h"
#include "util/error.h"

namespace openba {

namespace {

Denoiser read_denoiser(const ConfigNode& n) {
  Denoiser d;
  const std::string kind = n.get_string("kind", "span");
  if (kind == "span") {
    d.kind = Denoiser::Kind::kSpan;
  } else if (kind == "prefix") {
    d.kind = Denoiser::Kind::kPrefix;
  } else {
    throw Error(n.where("kind") + ": kind must be span or prefix (got '" + kind + "')");
  }
  d.mean_span = n.get_double("mean_span", d.kind == Denoiser::Kind::kSpan ? 3.0 : 0.0);
  d.rate = n.get_double("rate", d.kind == Denoiser::Kind::kSpan ? 0.15 : 0.25);
  const std::string prefix = n.get_string("prefix", d.kind == Denoiser::Kind::kSpan ? "R" : "S");
  if (prefix == "none") {
    d.prefix = 0;
  } else if (prefix == "R" || prefix == "S" || prefix == "X") {
    d.prefix = prefix[0];
  } else {
    throw Error(n.where("prefix") + ": prefix must be R, S, X or none (got '" + prefix + "')");
  }
  d.weight = n.get_double("weight", 1.0);
  char fallback[64];
  if (d.kind == Denoiser::Kind::kSpan) {
    std::snprintf(fallback, sizeof(fallback), "%s(%g,%g)", prefix.c_str(), d.mean_span, d.rate);
  } else {
    std::snprintf(fallback, sizeof(fallback), "%s(%g)", prefix.c_str(), d.rate);
  }
  d.name = n.get_string("name", fallback);
  if (d.kind == Denoiser::Kind::kSpan && !(d.mean_span >= 1)) throw Error(n.where("mean_span") + ": mean_span must be >= 1");
  if (!(d.rate > 0 && d.rate < 1)) throw Error(n.where("rate") + ": rate must be in (0, 1)");
  if (!(d.weight >= 0)) throw Error(n.where("weight") + ": weight must be >= 0");
  return d;
}

void positive(const ConfigNode& n, const std::string& key, int64_t value) {
  if (value <= 0) throw Error(n.where(key) + ": '" + n.path() + "." + key + "' must be positive");
}

}  // namespace

int64_t TrainConfig::accumulation_steps(int ranks) const {
  const int64_t per_pass = micro_batch * ranks;
  if (global_batch % per_pass != 0) {
    throw Error("trainer.global_batch " + std::to_string(global_batch) + " is not a multiple of trainer.micro_batch " +
                std::to_string(micro_batch) + " x " + std::to_string(ranks) + " rank(s)");
  }
  return global_batch / per_pass;
}

TrainConfig read_train_config(const ConfigNode& root) {
  TrainConfig c;
  const ConfigNode model = root.child("model");
  c.checkpoint = model.require_string("checkpoint");

  const ConfigNode data = root.child("data");
  for (const ConfigNode& source : data.list("train")) {
    DataSourceConfig s;
    s.shards = source.require_string("shards");
    s.weight = source.get_double("weight", 1.0);
    if (!(s.weight > 0)) throw Error(source.where("weight") + ": weight must be positive");
    c.train.push_back(s);
  }
  if (c.train.empty()) throw Error(data.where("train") + ": data.train lists no shard sets");
  c.heldout = data.get_string("heldout", "");
  c.data_seed = static_cast<uint64_t>(data.get_int("seed", 0));

  if (root.has("ul2")) {
    const ConfigNode ul2 = root.child("ul2");
    c.encoder_tokens = ul2.get_int("encoder_tokens", c.encoder_tokens);
    c.decoder_tokens = ul2.get_int("decoder_tokens", c.decoder_tokens);
    positive(ul2, "encoder_tokens", c.encoder_tokens);
    positive(ul2, "decoder_tokens", c.decoder_tokens);
    if (ul2.has("denoisers")) {
      c.denoisers.clear();
      for (const ConfigNode& d : ul2.list("denoisers")) c.denoisers.push_back(read_denoiser(d));
      if (c.denoisers.empty()) throw Error(ul2.where("denoisers") + ": no denoisers listed");
    }
    if (ul2.has("dynamic")) {
      const ConfigNode dyn = ul2.child("dynamic");
      c.dynamic_mixture = dyn.get_bool("enabled", true);
      c.dynamic_initial = dyn.get_doubles("initial", {});
      c.dynamic_targets = dyn.get_doubles("targets", {});
      c.dynamic_c = dyn.get_double("c", c.dynamic_c);
      const size_t k = c.denoisers.size();
      if (!c.dynamic_initial.empty() && c.dynamic_initial.size() != k) {
        throw Error(dyn.where("initial") + ": " + std::to_string(c.dynamic_initial.size()) + " initial weights for " +
                    std::to_string(k) + " denoisers");
      }
      if (c.dynamic_mixture && c.dynamic_targets.size() != k) {
        throw Error(dyn.where("targets") + ": D-UL2 needs one target loss per denoiser (" + std::to_string(k) + ")");
      }
      if (!(c.dynamic_c >= 0 && c.dynamic_c <= 1)) throw Error(dyn.where("c") + ": c must be in [0, 1]");
    }
  }

  const ConfigNode t = root.child("trainer");
  c.steps = t.require_int("steps");
  positive(t, "steps", c.steps);
  c.micro_batch = t.get_int("micro_batch", c.micro_batch);
  c.global_batch = t.get_int("global_batch", c.micro_batch);
  positive(t, "micro_batch", c.micro_batch);
  positive(t, "global_batch", c.global_batch);
  if (c.global_batch % c.micro_batch != 0) {
    throw Error(t.where("global_batch") + ": trainer.global_batch " + std::to_string(c.global_batch) +
                " is not a multiple of trainer.micro_batch " + std::to_string(c.micro_batch));
  }
  c.lr = t.get_double("lr", c.lr);
  c.min_lr = t.get_double("min_lr", std::min(c.min_lr, c.lr));
  c.warmup_steps = t.get_int("warmup_steps", c.warmup_steps);
  c.decay_steps = t.get_int("decay_steps", 0);
  c.weight_decay = t.get_double("weight_decay", c.weight_decay);
  const auto betas = t.get_doubles("betas", {c.beta1, c.beta2});
  if (betas.size() != 2 || !(betas[0] >= 0 && betas[0] < 1 && betas[1] >= 0 && betas[1] < 1)) {
    throw Error(t.where("betas") + ": betas must be two numbers in [0, 1)");
  }
  c.beta1 = betas[0];
  c.beta2 = betas[1];
  c.eps = t.get_double("eps", c.eps);
  c.grad_clip = t.get_double("grad_clip", c.grad_clip);
  c.dropout = t.get_double("dropout", c.dropout);
  c.activation_checkpointing = t.get_bool("activation_checkpointing", false);
  c.seed = static_cast<uint64_t>(t.get_int("seed", 0));
  c.max_nonfinite_in_a_row = t.get_int("max_nonfinite_in_a_row", c.max_nonfinite_in_a_row);
  c.device = t.get_string("device", c.device);
  c.threads = static_cast<int>(t.get_int("threads", 0));
  c.save_dtype = t.get_string("save_dtype", "");
  if (!(c.lr > 0) || !(c.min_lr >= 0) || c.min_lr > c.lr) {
    throw Error(t.where("lr") + ": need lr > 0 and 0 <= min_lr <= lr");
  }
  if (c.warmup_steps < 0 || (c.decay_steps != 0 && c.decay_steps <= c.warmup_steps)) {
    throw Error(t.where("warmup_steps") + ": need 0 <= warmup_steps < decay_steps");
  }
  if (!(c.dropout >= 0 && c.dropout < 1)) throw Error(t.where("dropout") + ": dropout must be in [0, 1)");
  if (!(c.grad_clip >= 0)) throw Error(t.where("grad_clip") + ": grad_clip must be >= 0");
  positive(t, "max_nonfinite_in_a_row", c.max_nonfinite_in_a_row);

  if (root.has("checkpoint")) {
    const ConfigNode k = root.child("checkpoint");
    c.checkpoint_every = k.get_int("every", 0);
    c.keep_checkpoints = k.get_int("keep", c.keep_checkpoints);
    positive(k, "keep", c.keep_checkpoints);
    if (c.checkpoint_every < 0) throw Error(k.where("every") + ": every must be >= 0");
  }
  if (root.has("eval")) {
    const ConfigNode e = root.child("eval");
    c.eval_every = e.get_int("every", 0);
    c.eval_examples_per_denoiser = e.get_int("examples_per_denoiser", c.eval_examples_per_denoiser);
    c.eval_batch = e.get_int("batch", c.eval_batch);
    positive(e, "examples_per_denoiser", c.eval_examples_per_denoiser);
    positive(e, "batch", c.eval_batch);
    const int64_t seed = e.get_int("seed", 0);
    if (seed < 0) throw Error(e.where("seed") + ": eval.seed must not be negative");
    c.heldout_seed = static_cast<uint64_t>(seed);
  }
  if (root.has("distill")) {
    const ConfigNode d = root.child("distill");
    c.distill.teacher = d.require_string("teacher");
    if (c.distill.teacher.empty()) throw Error(d.where("teacher") + ": distill.teacher is empty");
    c.distill.alpha = d.get_double("alpha", c.distill.alpha);
    c.distill.temperature = d.get_double("temperature", c.distill.temperature);
    c.distill.top_k = d.get_int("top_k", 0);
    if (!(c.distill.alpha >= 0 && c.distill.alpha <= 1)) {
      throw Error(d.where("alpha") + ": distill.alpha must be in [0, 1] (got " + std::to_string(c.distill.alpha) + ")");
    }
    if (!(c.distill.temperature > 0) || !std::isfinite(c.distill.temperature)) {
      throw Error(d.where("temperature") + ": distill.temperature must be positive (got " +
                  std::to_string(c.distill.temperature) + ")");
    }
    if (c.distill.top_k < 0) throw Error(d.where("top_k") + ": distill.top_k must be >= 0 (0 = every logit)");
  }
  if (root.has("logging")) {
    const ConfigNode l = root.child("logging");
    c.log_every = l.get_int("every", 1);
    positive(l, "every", c.log_every);
    c.tensorboard = l.get_bool("tensorboard", true);
    c.peak_tflops = l.get_double("peak_tflops", 0);
  }
  if (root.has("distributed")) {
    const ConfigNode d = root.child("distributed");
    c.backend = d.get_string("backend", c.backend);
    if (c.backend != "auto" && c.backend != "gloo" && c.backend != "nccl") {
      throw Error(d.where("backend") + ": backend '" + c.backend + "' is not one of auto, gloo, nccl");
    }
    c.zero = d.get_int("zero", c.zero);
    if (c.zero < 0 || c.zero > 2) throw Error(d.where("zero") + ": zero must be 0, 1 or 2");
    c.bucket_mb = d.get_double("bucket_mb", c.bucket_mb);
    if (!(c.bucket_mb > 0)) throw Error(d.where("bucket_mb") + ": bucket_mb must be positive");
    c.comm_timeout_s = d.get_double("timeout_s", c.comm_timeout_s);
    if (!(c.comm_timeout_s > 0)) throw Error(d.where("timeout_s") + ": timeout_s must be positive");
    c.overlap_comm = d.get_bool("overlap", c.overlap_comm);
  }
  if (root.has("debug")) {
    const ConfigNode d = root.child("debug");
    c.nonfinite_at_steps = d.get_doubles("nonfinite_at_steps", {});
  }
  root.finish();
  return c;
}

}  // namespace openba

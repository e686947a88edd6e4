#include "runtime/generation.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "util/error.h"

namespace openba {
namespace {

// The next-token logits of every running row. The prefix is fed first
// ([N, P]), then one id per row and step.
class NextTokenLogits {
 public:
  NextTokenLogits(Seq2SeqModelImpl& model, const OpBackend& ops, torch::Tensor encoder_states,
                  torch::Tensor encoder_mask, int64_t capacity, bool use_cache)
      : model_(model), ops_(ops), encoder_states_(std::move(encoder_states)), encoder_mask_(std::move(encoder_mask)),
        use_cache_(use_cache) {
    if (use_cache_) cache_ = model_.start_decoding(ops_, encoder_states_, encoder_mask_, capacity);
  }

  // fp32 logits [N, V] of the last position after `tokens` [N, t].
  torch::Tensor feed(const torch::Tensor& tokens) {
    if (use_cache_) {
      auto states = model_.decode_step(ops_, tokens, cache_);
      return model_.project(ops_, states.select(1, states.size(1) - 1));
    }
    // Without the cache: the whole prefix again, only its last position projected.
    ids_ = ids_.defined() ? torch::cat({ids_, tokens}, 1) : tokens;
    auto states = model_.decode(ops_, ids_, {}, encoder_states_, encoder_mask_);
    return model_.project(ops_, states.select(1, ids_.size(1) - 1));
  }

  // Running row i continues the sequence of row rows[i] (beam search),
  // before the next feed. Rows keep their encoder input (beams of one input).
  void reorder(const torch::Tensor& rows) {
    if (use_cache_) {
      cache_.select_rows(rows, /*cross_too=*/false);
    } else {
      ids_ = ids_.index_select(0, rows);
    }
  }

 private:
  Seq2SeqModelImpl& model_;
  const OpBackend& ops_;
  torch::Tensor encoder_states_, encoder_mask_;
  bool use_cache_;
  DecoderCache cache_;
  torch::Tensor ids_;  // without the cache: every id fed so far
};

struct EncodedBatch {
  torch::Tensor ids;   // [N, Te], right-padded
  torch::Tensor mask;  // [N, Te] 1/0, undefined when nothing is padded
};

EncodedBatch pad_inputs(const std::vector<std::vector<int64_t>>& inputs, int64_t pad, const torch::Device& device) {
  int64_t longest = 0;
  for (const auto& in : inputs) longest = std::max<int64_t>(longest, static_cast<int64_t>(in.size()));
  const auto n = static_cast<int64_t>(inputs.size());
  auto ids = torch::full({n, longest}, pad, torch::kLong);
  auto mask = torch::zeros({n, longest}, torch::kLong);
  bool padded = false;
  for (int64_t i = 0; i < n; ++i) {
    const auto& in = inputs[static_cast<size_t>(i)];
    const auto len = static_cast<int64_t>(in.size());
    if (len == 0) throw Error("generate: input " + std::to_string(i) + " is empty");
    std::copy(in.begin(), in.end(), ids[i].data_ptr<int64_t>());
    mask[i].narrow(0, 0, len).fill_(1);
    padded = padded || len < longest;
  }
  EncodedBatch batch;
  batch.ids = ids.to(device);
  if (padded) batch.mask = mask.to(device);
  return batch;
}

// Row r of ids [N, L] up to and including the first </s>.
Generated cut_at_eos(const torch::Tensor& row, int64_t eos) {
  Generated out;
  const int64_t* p = row.data_ptr<int64_t>();
  for (int64_t j = 0; j < row.size(0); ++j) {
    out.ids.push_back(p[j]);
    if (p[j] == eos) {
      out.finished = true;
      break;
    }
  }
  return out;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// transformers' warpers in its order: temperature, top-k, top-p.
torch::Tensor warp_for_sampling(torch::Tensor scores, const GenerationOptions& o) {
  const double minus_inf = -std::numeric_limits<double>::infinity();
  if (o.temperature != 1.0) scores = scores / o.temperature;
  if (o.top_k > 0) {
    const int64_t k = std::min<int64_t>(o.top_k, scores.size(-1));
    auto kth = std::get<0>(torch::topk(scores, k)).narrow(-1, k - 1, 1);
    scores = scores.masked_fill(scores < kth, minus_inf);
  }
  if (o.top_p < 1.0) {
    auto [sorted, order] = torch::sort(scores, /*dim=*/-1, /*descending=*/false);
    auto cumulative = sorted.softmax(-1).cumsum(-1);
    auto drop_sorted = cumulative <= (1.0 - o.top_p);
    drop_sorted.select(-1, drop_sorted.size(-1) - 1).fill_(false);  // keep at least the most likely
    auto drop = drop_sorted.scatter(1, order, drop_sorted);
    scores = scores.masked_fill(drop, minus_inf);
  }
  return scores;
}

// transformers' MinNewTokensLengthLogitsProcessor: no </s> before step min_new_tokens.
torch::Tensor forbid_early_eos(torch::Tensor scores, int64_t step, const GenerationOptions& o, int64_t eos) {
  if (step >= o.min_new_tokens) return scores;
  scores = scores.clone();
  scores.select(-1, eos).fill_(-std::numeric_limits<float>::infinity());
  return scores;
}

std::vector<Generated> greedy_or_sample(NextTokenLogits& next, int64_t n, const torch::Tensor& prefix,
                                        const GenerationOptions& o, const ModelConfig& config,
                                        const std::vector<uint64_t>& input_indices) {
  const bool sample = o.strategy == DecodeStrategy::kSample;
  std::vector<at::Generator> generators;
  if (sample) {
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t index = input_indices.empty() ? static_cast<uint64_t>(i) : input_indices[static_cast<size_t>(i)];
      generators.push_back(at::make_generator<at::CPUGeneratorImpl>(splitmix64(o.seed ^ splitmix64(index))));
    }
  }
  auto logits = next.feed(prefix);
  auto unfinished = torch::ones({n}, torch::TensorOptions().dtype(torch::kBool).device(prefix.device()));
  std::vector<torch::Tensor> steps;
  for (int64_t s = 0; s < o.max_new_tokens; ++s) {
    logits = forbid_early_eos(logits, s, o, config.eos_token_id);
    torch::Tensor token;
    if (sample) {
      auto probs = warp_for_sampling(logits, o).softmax(-1).cpu();
      token = torch::empty({n}, torch::kLong);
      for (int64_t i = 0; i < n; ++i) {
        token[i].fill_(torch::multinomial(probs[i], 1, false, generators[static_cast<size_t>(i)]).item<int64_t>());
      }
      token = token.to(prefix.device());
    } else {
      token = logits.argmax(-1);
    }
    token = torch::where(unfinished, token, torch::full_like(token, config.pad_token_id));
    steps.push_back(token);
    unfinished = unfinished & (token != config.eos_token_id);
    if (s + 1 == o.max_new_tokens || !unfinished.any().item<bool>()) break;
    logits = next.feed(token.unsqueeze(1));
  }
  auto ids = torch::stack(steps, 1).cpu().contiguous();
  std::vector<Generated> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(cut_at_eos(ids[i], config.eos_token_id));
  return out;
}

// tensor [B, K', ...] gathered along dim 1 by index [B, K''].
torch::Tensor gather_beams(const torch::Tensor& tensor, torch::Tensor index) {
  while (index.dim() < tensor.dim()) index = index.unsqueeze(-1);
  return torch::take_along_dim(tensor, index, 1);
}

// transformers 4.57's vectorized beam search (GenerationMixin._beam_search
// and its helpers), op for op, so that ties and the -1e9 sentinels fall the
// same way.
std::vector<Generated> beam_search(NextTokenLogits& next, int64_t batch, const torch::Tensor& prefix_rows,
                                   const GenerationOptions& o, const ModelConfig& config) {
  const int64_t k = o.beams, keep = 2 * k, prompt = prefix_rows.size(1);
  const int64_t max_length = prompt + o.max_new_tokens;
  const auto device = prefix_rows.device();
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(device);
  const auto b8 = torch::TensorOptions().dtype(torch::kBool).device(device);
  // transformers fills unwritten positions with `pad or eos` (pad 0 reads false).
  const int64_t fill = config.pad_token_id != 0 ? config.pad_token_id : config.eos_token_id;
  auto running = torch::full({batch, k, max_length}, fill, torch::TensorOptions().dtype(torch::kLong).device(device));
  running.narrow(2, 0, prompt).copy_(prefix_rows.view({batch, k, prompt}));
  auto sequences = running.clone();
  auto running_scores = torch::zeros({batch, k}, f32);
  running_scores.narrow(1, 1, k - 1).fill_(-1e9);
  auto beam_scores = torch::full({batch, k}, -1e9, f32);
  auto finished = torch::zeros({batch, k}, b8);
  auto improvable = torch::ones({batch, 1}, b8);
  auto top_k_mask = torch::cat({torch::ones({k}, b8), torch::zeros({keep - k}, b8)});
  auto row_offset = (torch::arange(batch, torch::TensorOptions().dtype(torch::kLong).device(device)) * k).view({-1, 1});

  auto logits = next.feed(prefix_rows);
  int64_t cur_len = prompt;
  while (true) {
    const int64_t vocab = logits.size(-1);
    auto log_probs = forbid_early_eos(torch::log_softmax(logits, -1), cur_len - prompt, o, config.eos_token_id)
                         .view({batch, k, vocab}) +
                     running_scores.unsqueeze(-1);
    log_probs = log_probs.reshape({batch, k * vocab});
    auto [topk_log_probs, topk_indices] = torch::topk(log_probs, keep);
    auto source_beam = topk_indices.div(vocab, "floor");
    auto token = topk_indices.remainder(vocab);
    auto topk_sequences = gather_beams(running, source_beam);
    topk_sequences.select(2, cur_len).copy_(token);
    auto hits = token == config.eos_token_id;
    if (cur_len + 1 >= max_length) hits.fill_(true);

    // The best K that did not just finish run on.
    auto running_log_probs = topk_log_probs + hits.to(torch::kFloat) * -1.0e9;
    auto next_index = std::get<1>(torch::topk(running_log_probs, k));
    running = gather_beams(topk_sequences, next_index);
    running_scores = gather_beams(running_log_probs, next_index);
    auto parent_rows = (gather_beams(source_beam, next_index) + row_offset).reshape({-1});

    // Those among the first K that finished join the finished set if they beat it.
    auto just_finished = hits & top_k_mask.unsqueeze(0);
    auto scored = topk_log_probs / std::pow(static_cast<double>(cur_len + 1 - prompt), o.length_penalty);
    if (o.early_stopping == BeamEarlyStopping::kWhenFull) {
      scored = scored + finished.all(-1, /*keepdim=*/true).to(torch::kFloat) * -1.0e9;
    }
    scored = scored + (~improvable).to(torch::kFloat) * -1.0e9;
    scored = scored + (~just_finished).to(torch::kFloat) * -1.0e9;
    auto merged_scores = torch::cat({beam_scores, scored}, 1);
    auto merged_index = std::get<1>(torch::topk(merged_scores, k));
    sequences = gather_beams(torch::cat({sequences, topk_sequences}, 1), merged_index);
    beam_scores = gather_beams(merged_scores, merged_index);
    finished = gather_beams(torch::cat({finished, just_finished}, 1), merged_index);

    cur_len += 1;
    const double best_length = o.early_stopping == BeamEarlyStopping::kNever && o.length_penalty > 0.0
                                   ? static_cast<double>(max_length - prompt)
                                   : static_cast<double>(cur_len - prompt);
    auto best_running = running_scores.narrow(1, 0, 1) / std::pow(best_length, o.length_penalty);
    auto worst_finished = torch::where(finished, std::get<0>(torch::min(beam_scores, 1, /*keepdim=*/true)),
                                       torch::full({}, -1.0e9, f32));
    improvable = improvable & (best_running > worst_finished).any(-1, /*keepdim=*/true);
    const bool open_beam =
        !(o.early_stopping == BeamEarlyStopping::kWhenFull && finished.all().item<bool>());
    if (!improvable.any().item<bool>() || !open_beam || hits.all().item<bool>()) break;

    next.reorder(parent_rows);
    logits = next.feed(running.select(2, cur_len - 1).reshape({batch * k, 1}));
  }
  auto best = sequences.select(1, 0).narrow(1, prompt, max_length - prompt).cpu().contiguous();
  auto best_scores = beam_scores.select(1, 0).cpu();
  std::vector<Generated> out;
  for (int64_t b = 0; b < batch; ++b) {
    out.push_back(cut_at_eos(best[b], config.eos_token_id));
    out.back().score = best_scores[b].item<double>();
  }
  return out;
}

}  // namespace

void check_generation_options(const GenerationOptions& o) {
  if (o.max_new_tokens < 1) throw Error("--max-new-tokens must be at least 1 (got " + std::to_string(o.max_new_tokens) + ")");
  if (o.min_new_tokens < 0 || o.min_new_tokens > o.max_new_tokens) {
    throw Error("--min-new-tokens must be in [0, --max-new-tokens] (got " + std::to_string(o.min_new_tokens) + ")");
  }
  if (o.strategy == DecodeStrategy::kBeam && o.beams < 1) {
    throw Error("--beams must be at least 1 (got " + std::to_string(o.beams) + ")");
  }
  if (o.strategy == DecodeStrategy::kSample) {
    if (!(o.temperature > 0) || !std::isfinite(o.temperature)) {
      throw Error("--temperature must be a positive number (got " + std::to_string(o.temperature) + ")");
    }
    if (!(o.top_p > 0 && o.top_p <= 1)) throw Error("--top-p must be in (0, 1] (got " + std::to_string(o.top_p) + ")");
    if (o.top_k < 0) throw Error("--top-k must be 0 (off) or positive (got " + std::to_string(o.top_k) + ")");
  }
}

std::vector<Generated> generate(Seq2SeqModelImpl& model, const std::vector<std::vector<int64_t>>& inputs,
                                const GenerationOptions& options, const torch::Device& device,
                                const std::vector<uint64_t>& input_indices) {
  check_generation_options(options);
  if (inputs.empty()) return {};
  if (!input_indices.empty() && input_indices.size() != inputs.size()) {
    throw Error("generate: " + std::to_string(input_indices.size()) + " input indices for " +
                std::to_string(inputs.size()) + " inputs");
  }
  if (model.is_training()) throw Error("generate: the model is in training mode");
  torch::NoGradGuard no_grad;
  const ModelConfig& config = model.config;
  std::vector<int64_t> prefix = options.decoder_prefix;
  if (prefix.empty()) prefix.push_back(config.decoder_start_token_id);
  for (int64_t id : prefix) {
    if (id < 0 || id >= config.vocab_size) {
      throw Error("decoder prefix id " + std::to_string(id) + " is outside the vocabulary [0, " +
                  std::to_string(config.vocab_size) + ")");
    }
  }
  const auto batch = static_cast<int64_t>(inputs.size());
  const bool beam = options.strategy == DecodeStrategy::kBeam;
  const int64_t rows = beam ? batch * options.beams : batch;
  const OpBackend& ops = select_op_backend(model.embedding_weight());
  EncodedBatch encoded = pad_inputs(inputs, config.pad_token_id, device);
  for (const auto& in : inputs) {
    for (int64_t id : in) {
      if (id < 0 || id >= config.vocab_size) {
        throw Error("input id " + std::to_string(id) + " is outside the vocabulary [0, " +
                    std::to_string(config.vocab_size) + ")");
      }
    }
  }
  auto states = model.encode(ops, encoded.ids, encoded.mask);
  auto mask = encoded.mask;
  if (beam && options.beams > 1) {
    states = states.repeat_interleave(options.beams, 0);
    if (mask.defined()) mask = mask.repeat_interleave(options.beams, 0);
  }
  const auto prefix_len = static_cast<int64_t>(prefix.size());
  auto prefix_rows = torch::tensor(prefix, torch::kLong).view({1, prefix_len}).expand({rows, prefix_len}).contiguous().to(device);
  NextTokenLogits next(model, ops, states, mask, prefix_len + options.max_new_tokens, options.use_cache);
  if (beam) return beam_search(next, batch, prefix_rows, options, config);
  return greedy_or_sample(next, batch, prefix_rows, options, config, input_indices);
}

}  // namespace openba

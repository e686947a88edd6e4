#include "train/ul2_stream.h"

#include "tokenizer/layout.h"
#include "tokenizer/shard_reader.h"
#include "util/counter_rng.h"
#include "util/error.h"

namespace openba {
namespace {
// Independent random streams per example, so that e.g. the denoiser choice
// does not change which tokens are drawn.
constexpr uint64_t kDenoiserStream = 1;
constexpr uint64_t kPackingStream = 2;
constexpr uint64_t kCorruptionStream = 3;
}  // namespace

Ul2Stream::Ul2Stream(std::shared_ptr<const ShardMixture> data, const TokenizerLayout& tokenizer, Ul2Options options)
    : data_(std::move(data)), options_(std::move(options)) {
  if (options_.denoisers.empty()) throw Error("ul2: no denoisers configured");
  ids_.eos = tokenizer.eos_id();
  ids_.sentinel_base = tokenizer.sentinel_id(0);
  ids_.sentinels = tokenizer.extra_ids();
  if (tokenizer.has_mode_tokens()) {
    ids_.mode_r = tokenizer.mode_id('R');
    ids_.mode_s = tokenizer.mode_id('S');
    ids_.mode_x = tokenizer.mode_id('X');
  } else {
    // A T5 tokenizer has no mode tokens: the denoisers add no prefix.
    for (Denoiser& d : options_.denoisers) d.prefix = 0;
  }
  for (const Denoiser& d : options_.denoisers) {
    if (!(d.weight >= 0)) throw Error("ul2: denoiser " + d.name + " has a negative weight");
    if (d.kind == Denoiser::Kind::kSpan && !(d.mean_span >= 1)) throw Error("ul2: denoiser " + d.name + ": mean_span must be >= 1");
    if (!(d.rate > 0 && d.rate < 1)) throw Error("ul2: denoiser " + d.name + ": rate must be in (0, 1)");
    raw_lengths_.push_back(raw_length_for(d, options_.encoder_tokens, options_.decoder_tokens));
  }
}

std::vector<double> Ul2Stream::initial_weights() const {
  std::vector<double> w;
  double total = 0;
  for (const Denoiser& d : options_.denoisers) total += d.weight;
  if (!(total > 0)) throw Error("ul2: denoiser weights sum to zero");
  for (const Denoiser& d : options_.denoisers) w.push_back(d.weight / total);
  return w;
}

int Ul2Stream::denoiser_for(uint64_t i, const std::vector<double>& weights) const {
  if (weights.size() != options_.denoisers.size()) throw Error("ul2: one weight per denoiser expected");
  double total = 0;
  for (double w : weights) total += w;
  const double u = counter_uniform(options_.seed, kDenoiserStream, i) * total;
  double acc = 0;
  for (size_t d = 0; d < weights.size(); ++d) {
    acc += weights[d];
    if (u < acc) return static_cast<int>(d);
  }
  return static_cast<int>(weights.size() - 1);
}

std::vector<int32_t> Ul2Stream::raw_tokens(uint64_t i, int64_t length) const {
  CounterRng rng(options_.seed, kPackingStream, i);
  const uint64_t draw_seed = rng.next();
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(length));
  for (uint64_t k = 0; static_cast<int64_t>(out.size()) < length; ++k) {
    const auto draw = data_->draw(draw_seed, k);
    const TokenView doc = data_->sources()[draw.source].shards->document(draw.document);
    const int64_t need = length - static_cast<int64_t>(out.size());
    if (k == 0 && static_cast<int64_t>(doc.size()) >= length) {
      // One document is enough: a random window of it.
      const size_t offset = static_cast<size_t>(rng.below(doc.size() - static_cast<size_t>(length) + 1));
      for (int64_t t = 0; t < length; ++t) out.push_back(doc[offset + static_cast<size_t>(t)]);
      break;
    }
    if (k > 0) out.push_back(ids_.eos);  // document boundary
    const int64_t take = std::min<int64_t>(need - (k > 0 ? 1 : 0), static_cast<int64_t>(doc.size()));
    for (int64_t t = 0; t < take; ++t) out.push_back(doc[static_cast<size_t>(t)]);
  }
  out.resize(static_cast<size_t>(length));
  return out;
}

std::vector<Ul2Example> Ul2Stream::heldout_examples(int64_t per_denoiser) const {
  std::vector<Ul2Example> out;
  for (size_t d = 0; d < options_.denoisers.size(); ++d) {
    for (int64_t j = 0; j < per_denoiser; ++j) out.push_back(example_with(static_cast<uint64_t>(j), static_cast<int>(d)));
  }
  return out;
}

Ul2Example Ul2Stream::example_with(uint64_t i, int denoiser) const {
  const Denoiser& d = options_.denoisers.at(static_cast<size_t>(denoiser));
  const auto raw = raw_tokens(i, raw_lengths_[static_cast<size_t>(denoiser)]);
  CounterRng rng(options_.seed, kCorruptionStream, i);
  DenoisedExample ex = d.kind == Denoiser::Kind::kSpan ? corrupt_spans(raw, d, ids_, rng) : prefix_lm(raw, d, ids_, rng);
  return {denoiser, std::move(ex.input_ids), std::move(ex.labels)};
}

Ul2Example Ul2Stream::example(uint64_t i, const std::vector<double>& weights) const {
  return example_with(i, denoiser_for(i, weights));
}

}  // namespace openba

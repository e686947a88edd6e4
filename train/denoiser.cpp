#include "train/denoiser.h"

#include <algorithm>
#include <cmath>

#include "util/counter_rng.h"
#include "util/error.h"

namespace openba {
namespace {

// Round to nearest, ties to even (numpy / TensorFlow rounding).
int64_t round_even(double x) { return static_cast<int64_t>(std::nearbyint(x)); }

// The S-denoiser's longest suffix: round(r L), at least 1 and leaving a prefix.
int64_t prefix_lm_max_suffix(const Denoiser& d, int64_t length) {
  return std::max<int64_t>(1, std::min(round_even(d.rate * static_cast<double>(length)), length - 1));
}

}  // namespace

std::vector<Denoiser> openba_denoisers() {
  using K = Denoiser::Kind;
  return {{"R(3,0.15)", K::kSpan, 3, 0.15, 'R', 1},  {"R(8,0.15)", K::kSpan, 8, 0.15, 'R', 1},
          {"S(0.25)", K::kPrefix, 0, 0.25, 'S', 1},  {"X(3,0.5)", K::kSpan, 3, 0.5, 'X', 1},
          {"X(8,0.5)", K::kSpan, 8, 0.5, 'X', 1},    {"X(64,0.15)", K::kSpan, 64, 0.15, 'X', 1},
          {"X(64,0.5)", K::kSpan, 64, 0.5, 'X', 1}};
}

SpanCounts span_counts(int64_t length, double rate, double mean_span) {
  SpanCounts c;
  c.noise = std::min(std::max<int64_t>(round_even(static_cast<double>(length) * rate), 1), length - 1);
  c.spans = std::max<int64_t>(round_even(static_cast<double>(c.noise) / mean_span), 1);
  return c;
}

ExampleLengths example_lengths(const Denoiser& d, int64_t length) {
  const int64_t prefix = d.prefix ? 1 : 0;
  if (d.kind == Denoiser::Kind::kPrefix) {
    const int64_t max_suffix = prefix_lm_max_suffix(d, length);
    // Longest encoder: the shortest suffix (1); longest decoder: the longest suffix.
    return {prefix + (length - 1) + 2, 1 + max_suffix + 1};
  }
  const SpanCounts c = span_counts(length, d.rate, d.mean_span);
  return {prefix + (length - c.noise) + c.spans + 1, c.noise + c.spans + 1};
}

int64_t raw_length_for(const Denoiser& d, int64_t encoder_budget, int64_t decoder_budget) {
  int64_t best = 0;
  // Lengths are not monotonic in L (rounding), so look at every candidate.
  for (int64_t length = 2; length <= encoder_budget + decoder_budget; ++length) {
    const ExampleLengths e = example_lengths(d, length);
    if (e.encoder <= encoder_budget && e.decoder <= decoder_budget) best = length;
  }
  if (best == 0) {
    throw Error("denoiser " + d.name + ": no raw length fits the budgets (encoder " + std::to_string(encoder_budget) +
                ", decoder " + std::to_string(decoder_budget) + " tokens)");
  }
  return best;
}

int32_t DenoiserIds::mode(char prefix) const {
  switch (prefix) {
    case 'R': return mode_r;
    case 'S': return mode_s;
    case 'X': return mode_x;
    default: throw Error(std::string("unknown mode prefix '") + prefix + "'");
  }
}

std::vector<int64_t> random_segmentation(int64_t items, int64_t segments, CounterRng& rng) {
  // Cut points: shuffle (segments - 1) ones among (items - 1) gap slots.
  std::vector<uint8_t> first_in_segment(static_cast<size_t>(std::max<int64_t>(items - 1, 0)), 0);
  for (int64_t i = 0; i < segments - 1; ++i) first_in_segment[static_cast<size_t>(i)] = 1;
  rng.shuffle(first_in_segment);
  std::vector<int64_t> lengths;
  int64_t run = 1;
  for (uint8_t cut : first_in_segment) {
    if (cut) {
      lengths.push_back(run);
      run = 1;
    } else {
      ++run;
    }
  }
  lengths.push_back(run);
  return lengths;
}

DenoisedExample corrupt_spans(const std::vector<int32_t>& tokens, const Denoiser& d, const DenoiserIds& ids,
                              CounterRng& rng) {
  const int64_t length = static_cast<int64_t>(tokens.size());
  if (length < 2) throw Error("denoiser " + d.name + ": needs at least 2 raw tokens");
  const SpanCounts c = span_counts(length, d.rate, d.mean_span);
  if (c.spans > ids.sentinels) {
    throw Error("denoiser " + d.name + ": " + std::to_string(c.spans) + " noise spans but only " +
                std::to_string(ids.sentinels) + " sentinels");
  }
  const auto noise = random_segmentation(c.noise, c.spans, rng);
  const auto keep = random_segmentation(length - c.noise, c.spans, rng);
  DenoisedExample ex;
  ex.input_ids.reserve(static_cast<size_t>(length - c.noise + c.spans + 2));
  ex.labels.reserve(static_cast<size_t>(c.noise + c.spans + 1));
  if (d.prefix) ex.input_ids.push_back(ids.mode(d.prefix));
  size_t pos = 0;
  for (int64_t s = 0; s < c.spans; ++s) {
    ex.input_ids.insert(ex.input_ids.end(), tokens.begin() + pos, tokens.begin() + pos + keep[s]);
    pos += static_cast<size_t>(keep[s]);
    const int32_t sentinel = ids.sentinel_base - static_cast<int32_t>(s);
    ex.input_ids.push_back(sentinel);
    ex.labels.push_back(sentinel);
    ex.labels.insert(ex.labels.end(), tokens.begin() + pos, tokens.begin() + pos + noise[s]);
    pos += static_cast<size_t>(noise[s]);
  }
  ex.input_ids.push_back(ids.eos);
  ex.labels.push_back(ids.eos);
  return ex;
}

DenoisedExample prefix_lm(const std::vector<int32_t>& tokens, const Denoiser& d, const DenoiserIds& ids,
                          CounterRng& rng) {
  const int64_t length = static_cast<int64_t>(tokens.size());
  if (length < 2) throw Error("denoiser " + d.name + ": needs at least 2 raw tokens");
  const int64_t suffix = rng.between(1, prefix_lm_max_suffix(d, length));
  const int32_t sentinel = ids.sentinel_base;
  DenoisedExample ex;
  if (d.prefix) ex.input_ids.push_back(ids.mode(d.prefix));
  ex.input_ids.insert(ex.input_ids.end(), tokens.begin(), tokens.end() - suffix);
  ex.input_ids.push_back(sentinel);
  ex.input_ids.push_back(ids.eos);
  ex.labels.push_back(sentinel);
  ex.labels.insert(ex.labels.end(), tokens.end() - suffix, tokens.end());
  ex.labels.push_back(ids.eos);
  return ex;
}

std::vector<double> dynamic_mixture_update(const std::vector<double>& weights, const std::vector<double>& losses,
                                           const std::vector<double>& targets, double c) {
  const size_t k = weights.size();
  if (losses.size() != k || targets.size() != k) throw Error("D-UL2: weights, losses and targets differ in length");
  std::vector<double> logits(k);
  double max = -1e300;
  for (size_t i = 0; i < k; ++i) {
    if (!(weights[i] > 0)) throw Error("D-UL2: weights must be positive");
    logits[i] = std::log(weights[i]) + (losses[i] - targets[i]);
    max = std::max(max, logits[i]);
  }
  double sum = 0;
  for (double& x : logits) sum += (x = std::exp(x - max));
  std::vector<double> out(k);
  for (size_t i = 0; i < k; ++i) out[i] = (1 - c) * logits[i] / sum + c / static_cast<double>(k);
  return out;
}

}  // namespace openba

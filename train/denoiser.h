// UL2 denoisers (shared/reference/openba.md section 4).
//
// Span corruption with mean span length mu and rate r (T5's random-spans
// algorithm): for L raw tokens, N = round(r L) noise tokens (clamped to
// [1, L-1]) in S = max(1, round(N / mu)) spans; noise and non-noise tokens
// are each split into S non-empty runs uniformly at random and interleaved,
// starting with non-noise. Encoder input: [prefix] non-noise tokens with one
// sentinel per noise span, then </s> (L - N + S + 2 tokens with a prefix).
// Target: each noise span after its sentinel, then </s> (N + S + 1). Sentinels
// go in order: <extra_id_0>, <extra_id_1>, ...
//
// The S-denoiser (OpenBA's form): a suffix of n tokens, n uniform in
// [1, round(r L)] (r = 0.25): encoder [<S>] prefix <extra_id_0> </s>; target
// <extra_id_0> suffix </s>.
//
// Rounding is to nearest, ties to even, as numpy and TensorFlow round.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace openba {

class CounterRng;

struct Denoiser {
  enum class Kind { kSpan, kPrefix };
  std::string name;
  Kind kind = Kind::kSpan;
  double mean_span = 3;  // span denoisers
  double rate = 0.15;    // noise rate; for the S-denoiser, the largest suffix fraction
  char prefix = 'R';     // mode token R, S or X; 0 = none
  double weight = 1;     // mixture weight (normalized over the mixture)
};

// OpenBA's seven, drawn uniformly: R(3, .15), R(8, .15), S(.25), X(3, .5),
// X(8, .5), X(64, .15), X(64, .5).
std::vector<Denoiser> openba_denoisers();

struct SpanCounts {
  int64_t noise = 0;  // N
  int64_t spans = 0;  // S
};
SpanCounts span_counts(int64_t raw_length, double rate, double mean_span);

// Encoder and decoder tokens an example of `raw_length` takes (the S-denoiser's
// largest case), mode prefix and </s> included.
struct ExampleLengths {
  int64_t encoder = 0;
  int64_t decoder = 0;
};
ExampleLengths example_lengths(const Denoiser& d, int64_t raw_length);

// The largest raw length whose example fits both budgets; Error naming the
// denoiser when even the smallest does not fit.
int64_t raw_length_for(const Denoiser& d, int64_t encoder_budget, int64_t decoder_budget);

// Special ids the transformations need.
struct DenoiserIds {
  int32_t eos = 1;
  int32_t sentinel_base = 0;  // id of <extra_id_0>; <extra_id_k> = base - k
  int32_t sentinels = 100;
  int32_t mode_r = 0, mode_s = 0, mode_x = 0;
  int32_t mode(char prefix) const;
};

struct DenoisedExample {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> labels;
};

// T5's random segmentation: `items` split into `segments` non-empty runs.
std::vector<int64_t> random_segmentation(int64_t items, int64_t segments, CounterRng& rng);

DenoisedExample corrupt_spans(const std::vector<int32_t>& tokens, const Denoiser& d, const DenoiserIds& ids,
                              CounterRng& rng);
DenoisedExample prefix_lm(const std::vector<int32_t>& tokens, const Denoiser& d, const DenoiserIds& ids,
                          CounterRng& rng);

// D-UL2 (OpenBA-V2): w <- softmax(log w + (loss - target)), then mixed with
// the uniform distribution: w <- (1 - c) w + c / K.
std::vector<double> dynamic_mixture_update(const std::vector<double>& weights, const std::vector<double>& losses,
                                           const std::vector<double>& targets, double c);

}  // namespace openba

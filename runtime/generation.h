// Generation from a seq2seq model (openba-generate): greedy, beam search
// and sampling, batched with padded encoder inputs, as transformers'
// `generate` decides (4.57: _sample and the vectorized _beam_search):
//
//   greedy  argmax of the next-token logits; a row that has emitted </s>
//           continues with pad, and the batch stops when every row has.
//   sample  logits / temperature, then top-k, then top-p (the smallest set
//           of tokens whose probability reaches p; at least one), then a
//           draw from the softmax. Each input draws from its own generator,
//           seeded from (seed, the input's index), so an input's output does
//           not depend on which other inputs share its batch.
//   beam    K beams per input: the 2K best continuations of the summed
//           log-probabilities; those ending in </s> among the first K become
//           finished hypotheses scored sum / generated_length^length_penalty,
//           the best K others run on. An input is done when no running beam
//           can beat its worst finished one (transformers' early_stopping =
//           false heuristic; true: as soon as K are finished; "never": the
//           bound at max length). The best finished hypothesis is returned.
//
// Incremental decoding (the default): the encoder runs once, every decoder
// block's cross-attention keys and values are computed once, and
// self-attention keys and values go into caches preallocated for the whole
// generation (Seq2SeqModelImpl::start_decoding / decode_step). Without the
// cache every step reruns the decoder over the whole prefix (the check and
// the benchmark's baseline); both give the same tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "arch/seq2seq_model.h"

namespace openba {

enum class DecodeStrategy { kGreedy, kBeam, kSample };
enum class BeamEarlyStopping { kHeuristic, kWhenFull, kNever };  // transformers: False, True, "never"

struct GenerationOptions {
  DecodeStrategy strategy = DecodeStrategy::kGreedy;
  int64_t max_new_tokens = 128;
  // </s> is not chosen before this many new tokens (transformers'
  // min_new_tokens: its logit is -inf until then).
  int64_t min_new_tokens = 0;
  // Beam search.
  int64_t beams = 4;
  double length_penalty = 1.0;
  BeamEarlyStopping early_stopping = BeamEarlyStopping::kHeuristic;
  // Sampling.
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;  // 0: off
  uint64_t seed = 0;
  bool use_cache = true;
  // The decoder's first ids (empty: the config's decoder_start_token_id).
  std::vector<int64_t> decoder_prefix;
};

// Errors naming the option when values are out of range (beams < 1,
// temperature <= 0, top_p outside (0, 1], ...).
void check_generation_options(const GenerationOptions& options);

struct Generated {
  // The ids after the decoder prefix, up to and including </s>; without it
  // when max_new_tokens ran out first.
  std::vector<int64_t> ids;
  bool finished = false;  // ended with </s>
  double score = 0;       // beam: the hypothesis' length-normalized score; 0 otherwise
};

// Generates for every input (non-empty encoder ids), batched as given:
// every input of the call is one batch (pad on the right). input_indices
// are the inputs' indices among all inputs, which seed sampling (empty: 0,
// 1, ...). No gradients; the model must be in eval mode.
std::vector<Generated> generate(Seq2SeqModelImpl& model, const std::vector<std::vector<int64_t>>& inputs,
                                const GenerationOptions& options, const torch::Device& device,
                                const std::vector<uint64_t>& input_indices = {});

}  // namespace openba

// The measured speed of a model on the machine it runs on (openba-bench-model
// and the pipeline's `measure: speed:`), the figure to read beside a
// compression's parameter ratio:
//
//   encoder tokens/s  the encoder over encoder_batch inputs of input_length
//                     random ids, the best of `repeats`
//   decode tokens/s   greedy generation (runtime/generation.h, the key/value
//                     cache) of exactly new_tokens tokens per input (</s>
//                     forbidden until then) at each batch size: new tokens /
//                     the generation's wall time (its one encoder pass
//                     included), the best of `repeats` after a warm-up
//   peak memory       the process' peak RSS on CPU (which includes whatever
//                     ran before in the process); the caching allocator's
//                     peak allocated bytes on CUDA since the measurement began
//
// The inputs are random ids from a fixed seed, so every model of one
// vocabulary gets the same work.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace openba {

struct Seq2SeqModelImpl;

struct SpeedOptions {
  std::vector<int64_t> batches = {1, 8, 32};
  int64_t new_tokens = 128;
  int64_t input_length = 128;
  int64_t encoder_batch = 8;
  int repeats = 2;
};

// Errors naming the option (as the flags and pipeline keys spell it).
void check_speed_options(const SpeedOptions& options);

// {"input_length", "encoder_batch", "encoder_tokens_per_s", "decode":
// [{"batch", "new_tokens", "seconds", "tokens_per_s", "ms_per_step"}...],
// "peak_memory_bytes", "peak_memory_kind"}. The model must be in eval mode
// on `device` ("cpu", "cuda", "cuda:N"); runs under the caller's autocast.
// progress(line) gets one line per measurement.
nlohmann::ordered_json measure_model_speed(Seq2SeqModelImpl& model, const std::string& device,
                                           const SpeedOptions& options,
                                           const std::function<void(const std::string&)>& progress = {});

// The options as JSON (what a recorded measurement was made with).
nlohmann::ordered_json speed_options_json(const SpeedOptions& options);

}  // namespace openba

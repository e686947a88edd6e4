// One compression stage on a checkpoint directory: options, and the run
// that validates them, scores, plans, streams the surgery, evaluates and
// writes report.json (see tools/openba_compress.cpp for the flags).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace openba {

// A size flag that was not given (any given value, even negative, is checked).
constexpr int64_t kUnset = INT64_MIN;

struct CompressOptions {
  std::string stage;  // layer | neuron | vocab
  std::string model, out;
  bool force = false, quiet = false;
  // data
  std::string calib, eval;
  int64_t calib_samples = 1024;
  int64_t eval_samples = 16;  // per UL2 denoiser
  int64_t encoder_tokens = 570, decoder_tokens = 381;
  size_t batch_size = 16, max_batch_tokens = 16384;
  uint64_t seed = 0;       // --score random
  uint64_t data_seed = 0;  // calibration draws (and held-out ones unless heldout_seed is set)
  int64_t heldout_seed = -1;  // held-out draws; -1 = data_seed
  std::string score;            // layer: angular|loss; width: activation|magnitude|taylor|random
  std::string save_scores, scores_file;
  uint64_t max_shard_bytes = 5ull * 1000 * 1000 * 1000;
  // layer
  std::string drop_encoder_layers, drop_decoder_layers;
  int64_t keep_encoder_layers = kUnset, keep_decoder_layers = kUnset;
  // width
  int64_t ffn = kUnset, heads = kUnset, hidden = kUnset, round_to = 64;
  // vocab
  int64_t vocab = kUnset, min_freq = 0;
  std::vector<std::string> corpus;  // token shards to count frequencies on
  std::string tokenize_tool;        // openba-tokenize (default: next to this executable)
  std::string command_line;         // recorded in the report
};

// What a stage run leaves: the committed output directory and the report
// written into it as report.json.
struct CompressResult {
  std::string path;
  nlohmann::ordered_json report;
  // The held-out sections (null without --eval) and the one-line summary.
  const nlohmann::ordered_json& heldout() const;
  std::string removed_summary() const;
};

// Runs the stage; prints the table.
CompressResult run_compress(const CompressOptions& options);

}  // namespace openba

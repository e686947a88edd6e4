// The depth stage: which blocks to drop (explicit lists, or the lowest
// scores), and the surgery that drops them and renumbers the rest.
//
// Scores (higher = more important, keep):
//   angular: Block Influence, 1 - cos(block input, block output) per token,
//            averaged over the calibration tokens (ShortGPT / Gromov et al.);
//   loss:    held-out loss with the block skipped minus the loss without.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compress/surgery.h"

namespace openba {

class BlockwiseModel;
struct BlockBatch;
class Progress;

struct LayerScores {
  std::string method;  // "angular" or "loss"
  std::vector<double> encoder, decoder;
  nlohmann::ordered_json to_json() const;
  static LayerScores from_json(const nlohmann::json& j, const std::string& source);
};

LayerScores angular_layer_scores(const BlockwiseModel& model, std::vector<BlockBatch>& calibration, Progress* progress);
// `baseline`: the held-out loss of the unpruned model on `heldout`.
LayerScores loss_layer_scores(const BlockwiseModel& model, std::vector<BlockBatch>& heldout, double baseline,
                              Progress* progress);

// Indices of the `drop` lowest scores (ties: the later layer goes), ascending.
std::vector<int64_t> lowest_scores(const std::vector<double>& scores, int64_t drop);

// Parses "4,8" (numbering of the input model); errors name the flag and the
// layer count. Duplicates are errors; dropping every layer is an error.
std::vector<int64_t> parse_layer_list(const std::string& text, int64_t layers, const std::string& flag);

// Output keeps the blocks not dropped, renumbered contiguously in order;
// every other tensor is copied unchanged.
SurgeryPlan layer_surgery_plan(const Checkpoint& in, const std::vector<int64_t>& drop_encoder,
                               const std::vector<int64_t>& drop_decoder);

}  // namespace openba

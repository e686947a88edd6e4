// Data parallelism over a Communicator, as an OptimizerEngine:
//  - parameters (and, for ZeRO 0/1, gradients) become views into flat
//    buckets of about bucket_mb MB, filled in backward order; a hook on each
//    parameter's gradient accumulator counts it ready during the last
//    backward of a step, and a full bucket's collective starts at once
//    (buckets start in index order on every rank), overlapping the rest of
//    backward;
// The gradient side (BucketedGradients) and the optimizer side (the update
// rule's state and the step) are two classes; the rule is pluggable
// (train/update_rule.h).
//  - zero 0: all-reduce, the full update on every rank (plain data parallel);
//    zero 1: all-reduce, each rank keeps the rule's state for and updates only
//            its 1/N of every bucket, then parameters are all-gathered;
//    zero 2: every micro-batch's gradients are reduce-scattered as soon as a
//            bucket is full and the full gradients freed; each rank keeps only
//            its shard of the gradient (accumulated across micro-batches).
// Bucket chunks are padded to a multiple of the world size.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "train/optimizer_engine.h"
#include "train/update_rule.h"

namespace openba {

class Communicator;

struct DataParallelOptions {
  int zero = 0;            // 0, 1 or 2
  double bucket_mb = 25;   // gradient bucket size
  bool overlap = true;     // false: every collective starts after backward (for measuring overlap)
};

// The update rule (AdamW, or any UpdateRule) runs on what this rank owns.
std::unique_ptr<OptimizerEngine> make_data_parallel_engine(
    const std::vector<std::pair<std::string, torch::Tensor>>& named, std::unique_ptr<UpdateRule> rule,
    Communicator& comm, const DataParallelOptions& options);

}  // namespace openba

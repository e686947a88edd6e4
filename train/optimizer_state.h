// Optimizer state on disk, in a form any world size can read back:
//   optimizer.safetensors                    whole tensors "exp_avg.<param>",
//                                            "exp_avg_sq.<param>" (one writer)
//   optimizer-rank-RRRRR-of-NNNNN.safetensors  one file per rank of a sharded
//                                            (ZeRO) run: 1-D pieces
//                                            "exp_avg.<param>@<offset>" of the
//                                            flattened parameter
// OptimizerStateReader indexes either layout and serves any element range of
// any parameter, so a run can resume at another world size (re-sharding) or
// move between sharded and unsharded.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace openba {

class MappedFile;

std::string optimizer_shard_file_name(int rank, int world_size);
constexpr const char* kFullOptimizerFile = "optimizer.safetensors";

// "exp_avg.<name>@<offset>" for a piece starting at `offset` elements.
std::string optimizer_piece_key(const std::string& kind, const std::string& name, int64_t offset);

class OptimizerStateReader {
 public:
  // Error naming the directory when no optimizer state is there or a sharded
  // set is incomplete (a rank's file missing).
  static OptimizerStateReader open(const std::string& checkpoint_dir);

  // Fills `dest` (1-D, contiguous) with elements [offset, offset + numel) of
  // `kind` ("exp_avg" / "exp_avg_sq") of parameter `name` (flattened).
  // Error when the state does not cover them or the parameter has another size.
  void read(const std::string& kind, const std::string& name, int64_t offset, int64_t param_numel,
            torch::Tensor dest) const;
  std::string describe() const { return description_; }

 private:
  struct Piece {
    int64_t offset = 0, length = 0;
    size_t file = 0;
    uint64_t byte_offset = 0;
    int dtype_size = 4;
    bool whole = false;  // an unsharded tensor: its numel must equal the parameter's
  };
  std::vector<std::shared_ptr<MappedFile>> files_;
  std::vector<std::string> file_names_;
  std::map<std::string, std::vector<Piece>> pieces_;  // "kind.name" -> sorted by offset
  std::string description_;
};

}  // namespace openba

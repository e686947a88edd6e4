// Writes a checkpoint directory in the Hugging Face layout: safetensors
// shards (model.safetensors, or model-0000i-of-0000N.safetensors plus
// model.safetensors.index.json), config.json in OpenBA's key names, and any
// tokenizer files.
//
// Usage: plan every tensor (name, shape) up front, so shard headers are
// known; then write() tensors in any order (each streamed straight to its
// place in its shard); then commit(). Everything goes to a hidden staging
// directory that commit() renames into place; an unfinished writer leaves
// nothing behind. The output may never be, or lie inside, one of the inputs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "arch/openba/config.h"

namespace at {
class Tensor;
}

namespace openba {

class StagingDir;

struct WriterOptions {
  uint64_t max_shard_bytes = 5ull * 1000 * 1000 * 1000;  // 5 GB, as HF
  bool overwrite = false;  // replace an existing output directory
  // Directories the output must not be, or lie inside (the inputs).
  std::vector<std::string> protected_paths;
  // Extra safetensors __metadata__ entries (every shard).
  std::map<std::string, std::string> metadata;
};

struct PlannedTensor {
  std::string name;
  std::vector<int64_t> shape;
};

class CheckpointWriter {
 public:
  // Floating tensors are stored in config.dtype. Checks the output path
  // against the protected inputs and the overwrite rule immediately.
  CheckpointWriter(const std::string& out_dir, ModelConfig config, WriterOptions options);
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Fixes the tensors, their order and the shards. Call once.
  void plan(const std::vector<PlannedTensor>& tensors);
  // Converts to the storage dtype and writes the bytes. Each planned name once.
  void write(const std::string& name, const at::Tensor& tensor);
  // Copies a file (tokenizer, report) into the output directory.
  void copy_file(const std::string& source_path);
  void add_text_file(const std::string& file_name, const std::string& content);

  // Verifies every planned tensor was written, writes config.json and the
  // index, fsyncs and renames into place. Returns the final directory.
  std::string commit();

  const std::string& staging_path() const;
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  struct Shard;
  struct Slot {
    size_t shard = 0;
    uint64_t offset = 0;  // absolute in the shard file
    std::vector<int64_t> shape;
    bool written = false;
  };
  std::string out_dir_;
  ModelConfig config_;
  WriterOptions options_;
  std::unique_ptr<StagingDir> staging_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::string> order_;
  std::vector<std::pair<std::string, Slot>> slots_;  // in plan order
  std::unordered_map<std::string, size_t> slot_index_;
  uint64_t bytes_written_ = 0;
  uint64_t total_tensor_bytes_ = 0;
  bool planned_ = false;

  Slot& slot(const std::string& name);
};

}  // namespace openba

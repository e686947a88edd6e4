// Streaming checkpoint surgery: every output tensor is produced from the
// memory-mapped input (sliced, renamed or copied) and written straight to its
// place in the output shards, one tensor at a time, so peak memory is one
// tensor, not the model.
//
// The output directory is built under a hidden staging name; the caller
// evaluates the staged checkpoint, adds report.json and only then commits,
// so a directory with the final name is always complete.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/checkpoint.h"
#include "arch/openba/config.h"

namespace openba {

class Progress;
class StagingDir;

struct SurgeryPlan {
  ModelConfig out_config;
  // Produces the output tensor `name` (a name of openba_tensor_specs(out_config)).
  std::function<at::Tensor(const std::string& name)> produce;
  // Input tensors to release once `name` is written (their pages can go).
  std::function<std::vector<std::string>(const std::string& name)> sources;
  bool lm_head_tied = true;
  bool copy_tokenizer_files = true;  // the input's tokenizer files, unchanged
  std::map<std::string, std::string> files;  // extra files: name -> bytes
  uint64_t max_shard_bytes = 5ull * 1000 * 1000 * 1000;
};

class StagedOutput {
 public:
  // Checks OUT against the input (never the same or inside) and the
  // --force rule; nothing is written yet.
  StagedOutput(const std::string& out_dir, const std::string& input_dir, bool force);
  ~StagedOutput();
  // Writes the checkpoint into the staging directory.
  void write(const Checkpoint& in, const SurgeryPlan& plan, Progress* progress);
  const std::string& path() const;  // the staged checkpoint (openable)
  void add_file(const std::string& name, const std::string& bytes);
  // Renames into place; returns the final path.
  std::string commit();

  uint64_t bytes_written() const { return bytes_written_; }
  double seconds() const { return seconds_; }

 private:
  std::string out_dir_;
  bool force_;
  std::unique_ptr<StagingDir> staging_;
  uint64_t bytes_written_ = 0;
  double seconds_ = 0;
};

// Checks before any work: OUT is not IN or inside it, and exists only with --force.
void check_output_path(const std::string& out_dir, const std::string& input_dir, bool force);

}  // namespace openba

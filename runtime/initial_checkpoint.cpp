#include "runtime/initial_checkpoint.h"

#include <torch/torch.h>

#include "runtime/checkpoint.h"
#include "runtime/checkpoint_writer.h"
#include "arch/openba/layout.h"
#include "util/progress.h"

namespace openba {

WrittenCheckpoint write_initialized_checkpoint(const ModelConfig& config, const std::string& out_dir, uint64_t seed,
                                         InitScheme scheme, const WriterOptions& writer_options,
                                         const std::vector<std::string>& tokenizer_files, bool show_progress) {
  WriterOptions options = writer_options;
  options.metadata[kTiedMetadataKey] = "tied";  // lm_head.weight is the embedding
  CheckpointWriter writer(out_dir, config, options);
  const auto specs = openba_tensor_specs(config);
  std::vector<PlannedTensor> plan;
  uint64_t total = 0;
  for (const auto& spec : specs) {
    plan.push_back({spec.name, spec.shape});
    total += static_cast<uint64_t>(spec.numel()) * dtype_size(config.dtype);
  }
  writer.plan(plan);
  Progress progress("init", total, "bytes", show_progress);
  for (const auto& spec : specs) {
    writer.write(spec.name, initial_tensor(spec, config, seed, scheme));
    progress.advance(static_cast<uint64_t>(spec.numel()) * dtype_size(config.dtype));
  }
  for (const std::string& file : tokenizer_files) writer.copy_file(file);
  WrittenCheckpoint out;
  out.path = writer.commit();
  out.bytes = writer.bytes_written();
  progress.finish();
  return out;
}

}  // namespace openba

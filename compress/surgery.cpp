#include "compress/surgery.h"

#include <torch/torch.h>

#include <filesystem>

#include "runtime/checkpoint_writer.h"
#include "arch/openba/layout.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/progress.h"
#include "util/resources.h"

namespace openba {
namespace fs = std::filesystem;

void check_output_path(const std::string& out_dir, const std::string& input_dir, bool force) {
  if (path_is_same_or_inside(out_dir, input_dir)) {
    throw Error("--out " + out_dir + " is the input model directory " + input_dir +
                " or lies inside it (never write into an input)");
  }
  if (path_is_same_or_inside(input_dir, out_dir)) {
    throw Error("--out " + out_dir + " contains the input model directory " + input_dir +
                " (--force would delete the input)");
  }
  if (fs::exists(out_dir) && !force) throw Error("--out " + out_dir + ": already exists (use --force to replace it)");
}

StagedOutput::StagedOutput(const std::string& out_dir, const std::string& input_dir, bool force)
    : out_dir_(out_dir), force_(force) {
  check_output_path(out_dir, input_dir, force);
  staging_ = std::make_unique<StagingDir>(out_dir);
}

StagedOutput::~StagedOutput() = default;

const std::string& StagedOutput::path() const { return staging_->path(); }

void StagedOutput::write(const Checkpoint& in, const SurgeryPlan& plan, Progress* progress) {
  Stopwatch clock;
  // The writer stages into a subdirectory of our staging directory; its
  // files move up once complete.
  const std::string inner = (fs::path(staging_->path()) / "weights").string();
  WriterOptions options;
  options.max_shard_bytes = plan.max_shard_bytes;
  options.protected_paths = {in.dir()};
  if (plan.lm_head_tied) options.metadata[kTiedMetadataKey] = "tied";
  CheckpointWriter writer(inner, plan.out_config, options);
  const auto specs = openba_tensor_specs(plan.out_config);
  std::vector<PlannedTensor> planned;
  for (const auto& spec : specs) planned.push_back({spec.name, spec.shape});
  writer.plan(planned);
  for (const auto& spec : specs) {
    at::Tensor t;
    if (spec.name == kLmHeadWeightName && plan.lm_head_tied) {
      t = plan.produce(embedding_name(plan.out_config));
    } else {
      t = plan.produce(spec.name);
    }
    if (t.sizes().vec() != spec.shape) {
      throw Error("surgery: produced " + spec.name + " with the wrong shape (internal error)");
    }
    writer.write(spec.name, t);
    if (plan.sources) {
      for (const auto& name : plan.sources(spec.name)) in.release(name);
    }
    if (progress) progress->advance(static_cast<uint64_t>(spec.numel()) * dtype_size(plan.out_config.dtype));
  }
  if (plan.copy_tokenizer_files) {
    for (const std::string& file : in.tokenizer_files()) {
      if (!plan.files.count(fs::path(file).filename().string())) writer.copy_file(file);
    }
  }
  for (const auto& [name, bytes] : plan.files) writer.add_text_file(name, bytes);
  writer.commit();
  bytes_written_ = writer.bytes_written();
  for (const auto& entry : fs::directory_iterator(inner)) {
    fs::rename(entry.path(), fs::path(staging_->path()) / entry.path().filename());
  }
  fs::remove(inner);
  seconds_ = clock.seconds();
}

void StagedOutput::add_file(const std::string& name, const std::string& bytes) {
  write_file_durably((fs::path(staging_->path()) / name).string(), bytes);
}

std::string StagedOutput::commit() {
  staging_->commit(force_);
  return staging_->final_path();
}

}  // namespace openba

#include "train/training_checkpoint.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "runtime/checkpoint.h"
#include "runtime/checkpoint_writer.h"
#include "arch/openba/layout.h"
#include "runtime/model_io.h"
#include "runtime/safetensors_io.h"
#include "train/optimizer_engine.h"
#include "train/optimizer_state.h"
#include "util/error.h"
#include "util/fs.h"

namespace openba {
namespace fs = std::filesystem;
namespace {

bool is_checkpoint_name(const std::string& name) {
  return name.size() == 13 && name.rfind("step-", 0) == 0 &&
         std::all_of(name.begin() + 5, name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::vector<std::string> complete_checkpoints(const std::string& dir) {
  std::vector<std::string> names;
  if (!fs::is_directory(dir)) return names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && is_checkpoint_name(name) && fs::exists(entry.path() / "trainer_state.json")) {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

std::string checkpoint_dir_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%08lld", static_cast<long long>(step));
  return name;
}

std::unique_ptr<CheckpointWriter> begin_training_checkpoint(const std::string& path, Seq2SeqModelImpl& model,
                                                            const std::vector<std::string>& tokenizer_files) {
  ModelConfig config = model.config;
  config.dtype = DType::F32;  // master weights: exact resume
  WriterOptions options;
  options.overwrite = true;  // a re-run of the same step replaces it
  if (model.lm_head_tied()) options.metadata[kTiedMetadataKey] = "tied";
  auto writer = std::make_unique<CheckpointWriter>(path, config, options);
  write_model_tensors(*writer, model);
  for (const std::string& file : tokenizer_files) writer->copy_file(file);
  return writer;
}

void finish_training_checkpoint(CheckpointWriter& writer, const TrainerState& state, const OptimizerEngine& optimizer,
                                int world_size) {
  (void)OptimizerStateReader::open(writer.staging_path());  // every rank's part is there
  nlohmann::ordered_json j;
  j["step"] = state.step;
  j["examples"] = state.examples;
  j["tokens"] = state.tokens;
  j["optimizer_steps"] = optimizer.steps();
  j["optimizer"] = optimizer.describe();
  j["world_size"] = world_size;
  j["mixture_weights"] = state.mixture_weights;
  j["nonfinite_total"] = state.nonfinite_total;
  j["nonfinite_in_a_row"] = state.nonfinite_in_a_row;
  j["config_hash"] = state.config_hash;
  writer.add_text_file("trainer_state.json", j.dump(2) + "\n");
  writer.commit();
}

std::string newest_training_checkpoint(const std::string& checkpoints_dir) {
  const auto names = complete_checkpoints(checkpoints_dir);
  return names.empty() ? "" : (fs::path(checkpoints_dir) / names.back()).string();
}

TrainerState read_training_checkpoint(const std::string& path, Seq2SeqModelImpl& model, OptimizerEngine& optimizer) {
  const std::string state_path = (fs::path(path) / "trainer_state.json").string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(state_path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(state_path + ": malformed JSON: " + e.what());
  }
  const Checkpoint ck = Checkpoint::open(path);
  if (!ck.config().same_architecture(model.config)) {
    throw Error(path + ": checkpoint model (" + ck.config().summary() + ") differs from the configured model (" +
                model.config.summary() + ")");
  }
  TrainerState s;
  try {
    s.step = j.at("step").get<int64_t>();
    s.examples = j.at("examples").get<uint64_t>();
    s.tokens = j.at("tokens").get<uint64_t>();
    s.mixture_weights = j.at("mixture_weights").get<std::vector<double>>();
    s.nonfinite_total = j.at("nonfinite_total").get<int64_t>();
    s.nonfinite_in_a_row = j.at("nonfinite_in_a_row").get<int64_t>();
    s.config_hash = j.value("config_hash", "");
    fill_parameters(model, [&](const TensorSpec& spec) { return ck.tensor(spec.name); });
    optimizer.load_state(OptimizerStateReader::open(path), j.at("optimizer_steps").get<int64_t>());
  } catch (const nlohmann::json::exception& e) {
    throw Error(state_path + ": missing or malformed field (" + e.what() + ")");
  }
  return s;
}

void prune_training_checkpoints(const std::string& checkpoints_dir, int64_t keep) {
  if (!fs::is_directory(checkpoints_dir)) return;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".step-", 0) == 0 && name.find(".tmp-") != std::string::npos) fs::remove_all(entry.path(), ec);
  }
  const auto names = complete_checkpoints(checkpoints_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < names.size(); ++i) {
    fs::remove_all(fs::path(checkpoints_dir) / names[i], ec);
  }
}

}  // namespace openba

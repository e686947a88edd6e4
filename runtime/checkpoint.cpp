#include "runtime/checkpoint.h"

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "arch/openba/layout.h"
#include "formats/mapped_file.h"
#include "formats/safetensors.h"
#include "formats/torch_bin.h"
#include "util/error.h"
#include "util/fs.h"

namespace openba {
namespace fs = std::filesystem;

namespace {

struct WeightFiles {
  std::string format;
  std::vector<std::string> files;                  // relative names
  std::map<std::string, std::string> weight_map;   // empty when not sharded
  std::string index_path;
};

WeightFiles find_weight_files(const std::string& dir) {
  auto exists = [&](const char* name) { return fs::is_regular_file(fs::path(dir) / name); };
  WeightFiles w;
  const char* index_name = nullptr;
  if (exists("model.safetensors.index.json")) {
    w.format = "safetensors";
    index_name = "model.safetensors.index.json";
  } else if (exists("model.safetensors")) {
    w.format = "safetensors";
    w.files = {"model.safetensors"};
  } else if (exists("pytorch_model.bin.index.json")) {
    w.format = "torch";
    index_name = "pytorch_model.bin.index.json";
  } else if (exists("pytorch_model.bin")) {
    w.format = "torch";
    w.files = {"pytorch_model.bin"};
  } else {
    throw Error(dir + ": no weights found (expected model.safetensors, model.safetensors.index.json, "
                      "pytorch_model.bin or pytorch_model.bin.index.json)");
  }
  if (index_name) {
    w.index_path = (fs::path(dir) / index_name).string();
    const std::string text = read_text_file(w.index_path);
    nlohmann::json root;
    try {
      root = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw Error(w.index_path + ": malformed JSON: " + e.what());
    }
    if (!root.is_object() || !root.contains("weight_map") || !root["weight_map"].is_object()) {
      throw Error(w.index_path + ": missing the \"weight_map\" object");
    }
    std::set<std::string> files;
    for (auto it = root["weight_map"].begin(); it != root["weight_map"].end(); ++it) {
      if (!it.value().is_string()) {
        throw Error(w.index_path + ": weight_map entry for '" + it.key() + "' is not a file name");
      }
      const std::string file = it.value().get<std::string>();
      if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..") {
        throw Error(w.index_path + ": weight_map names '" + file +
                    "' for tensor '" + it.key() + "' (shard files must sit in the checkpoint directory)");
      }
      w.weight_map[it.key()] = file;
      files.insert(file);
    }
    w.files.assign(files.begin(), files.end());
    if (w.files.empty()) throw Error(w.index_path + ": weight_map is empty");
  }
  return w;
}


}  // namespace

const std::vector<std::string>& tokenizer_file_names() {
  static const std::vector<std::string> names = {"spiece.model", "added_tokens.json",
                                                 "special_tokens_map.json", "tokenizer_config.json",
                                                 "tokenizer.json"};
  return names;
}

Checkpoint Checkpoint::open(const std::string& dir) {
  if (!fs::is_directory(dir)) throw Error(dir + ": not a checkpoint directory (does not exist or is not a directory)");
  Checkpoint ck;
  ck.dir_ = dir;
  const std::string config_path = (fs::path(dir) / "config.json").string();
  if (!fs::is_regular_file(config_path)) throw Error(dir + ": missing config.json");
  ck.config_ = load_hf_config(config_path);

  WeightFiles weights = find_weight_files(dir);
  ck.format_ = weights.format;
  for (const std::string& name : weights.files) {
    if (!fs::is_regular_file(fs::path(dir) / name)) {
      throw Error(weights.index_path + ": lists shard '" + name + "' which does not exist");
    }
  }
  for (const std::string& name : weights.files) {
    const std::string path = (fs::path(dir) / name).string();
    auto file = MappedFile::open(path);
    CheckpointShard shard;
    std::vector<TensorRecord> records;
    if (weights.format == "safetensors") {
      SafetensorsFile parsed = parse_safetensors(file->data(), file->size(), path);
      records = std::move(parsed.tensors);
      shard.metadata = std::move(parsed.metadata);
    } else {
      records = read_torch_bin_index(file->data(), file->size(), path);
    }
    shard.path = path;
    shard.bytes = file->size();
    const size_t file_index = ck.files_.size();
    ck.files_.push_back(file);
    for (TensorRecord& r : records) {
      if (!weights.weight_map.empty()) {
        auto it = weights.weight_map.find(r.name);
        if (it == weights.weight_map.end()) {
          throw Error(path + ": tensor '" + r.name + "' is not listed in " + weights.index_path);
        }
        if (it->second != name) {
          throw Error(path + ": tensor '" + r.name + "' is listed in " + weights.index_path +
                      " as stored in '" + it->second + "'");
        }
      }
      if (ck.records_.count(r.name)) {
        throw Error(path + ": tensor '" + r.name + "' also appears in " +
                    ck.files_[ck.records_[r.name].file]->path());
      }
      shard.tensor_names.push_back(r.name);
      const std::string name_copy = r.name;  // the move below empties r.name
      ck.records_[name_copy] = Located{std::move(r), file_index};
    }
    ck.shards_.push_back(std::move(shard));
  }
  for (const auto& [tensor, file] : weights.weight_map) {
    if (!ck.records_.count(tensor)) {
      throw Error(weights.index_path + ": tensor '" + tensor + "' is listed for '" + file +
                  "' but that file does not hold it");
    }
  }

  // A T5 file that kept an alias of the embedding instead of shared.weight
  // (transformers accepts any of the tied names): read the embedding there.
  if (ck.config_.family == ModelFamily::kT5 && !ck.records_.count(embedding_name(ck.config_))) {
    for (const char* alias : {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"}) {
      auto it = ck.records_.find(alias);
      if (it == ck.records_.end()) continue;
      Located copy = it->second;
      copy.record.name = embedding_name(ck.config_);
      ck.records_[copy.record.name] = std::move(copy);
      break;
    }
  }

  // The tensors are the truth for the widths the config may state loosely.
  auto shape_of = [&](const std::string& name, size_t rank) -> const std::vector<int64_t>& {
    auto it = ck.records_.find(name);
    if (it == ck.records_.end()) throw Error(dir + ": missing tensor '" + name + "'");
    if (it->second.record.shape.size() != rank) {
      throw Error(ck.files_[it->second.file]->path() + ": tensor '" + name + "' has rank " +
                  std::to_string(it->second.record.shape.size()) + ", expected " + std::to_string(rank));
    }
    return it->second.record.shape;
  };
  const FfnWidthSource ffn = ffn_width_source(ck.config_);
  const auto& ffn_rows = shape_of(ffn.name, 2);
  if (ffn_rows[0] % ffn.rows_per_neuron != 0) {
    throw Error(dir + ": " + ffn.name + " has " + std::to_string(ffn_rows[0]) + " rows, not a multiple of " +
                std::to_string(ffn.rows_per_neuron) + " (SwiGLU stores gate and up halves)");
  }
  const int64_t vocab_rows = shape_of(embedding_name(ck.config_), 2)[0];
  reconcile_with_tensor_shapes(ck.config_, ffn_rows[0] / ffn.rows_per_neuron, vocab_rows, config_path);

  // Every expected tensor present with its shape; nothing unexpected.
  std::set<std::string> expected_names;
  for (const TensorSpec& spec : openba_tensor_specs(ck.config_)) {
    expected_names.insert(spec.name);
    auto it = ck.records_.find(spec.name);
    if (it == ck.records_.end()) {
      // OpenBA checkpoints that drop the tied output weight (HF's dedup) re-tie it on load.
      if (spec.name == kLmHeadWeightName && ck.config_.family == ModelFamily::kOpenBA) continue;
      throw Error(dir + ": missing tensor '" + spec.name + "' (expected by config " +
                  ck.config_.summary() + ")");
    }
    const TensorRecord& r = it->second.record;
    const std::string& file = ck.files_[it->second.file]->path();
    if (r.shape != spec.shape) {
      std::string got = "[", want = "[";
      for (size_t i = 0; i < r.shape.size(); ++i) got += (i ? ", " : "") + std::to_string(r.shape[i]);
      for (size_t i = 0; i < spec.shape.size(); ++i) want += (i ? ", " : "") + std::to_string(spec.shape[i]);
      throw Error(file + ": tensor '" + spec.name + "' has shape " + got + "] but the config (" +
                  config_path + ") implies " + want + "]");
    }
    if (!is_floating(r.dtype)) {
      throw Error(file + ": tensor '" + spec.name + "' has non-floating dtype " + dtype_name(r.dtype));
    }
    ck.names_.push_back(spec.name);
  }
  for (const auto& [name, located] : ck.records_) {
    if (!expected_names.count(name) && !is_ignored_tensor_name(name, ck.config_)) {
      throw Error(ck.files_[located.file]->path() + ": unexpected tensor '" + name + "' (not part of " +
                  (ck.config_.family == ModelFamily::kT5 ? "a T5" : "an OpenBA") + " model with config " +
                  ck.config_.summary() + ")");
    }
  }
  return ck;
}

const Checkpoint::Located& Checkpoint::locate(const std::string& name) const {
  auto it = records_.find(name);
  if (it == records_.end()) throw Error(dir_ + ": no tensor named '" + name + "'");
  return it->second;
}

const TensorRecord& Checkpoint::record(const std::string& name) const { return locate(name).record; }

void Checkpoint::release(const std::string& name) const {
  const Located& l = locate(name);
  files_[l.file]->release_pages(l.record.offset, l.record.span_bytes);
}

bool Checkpoint::shares_storage(const std::string& a, const std::string& b) const {
  const Located& x = locate(a);
  const Located& y = locate(b);
  if (x.file != y.file) return false;
  return x.record.offset == y.record.offset && x.record.shape == y.record.shape &&
         x.record.strides == y.record.strides && x.record.dtype == y.record.dtype;
}

const char* lm_head_storage_name(LmHeadStorage storage) {
  switch (storage) {
    case LmHeadStorage::kSharedStorage: return "shared storage with shared_embedding.weight";
    case LmHeadStorage::kRecordedTied: return "separate copy, recorded as tied to shared_embedding.weight";
    case LmHeadStorage::kSeparate: return "separate copy (not compared with shared_embedding.weight)";
    case LmHeadStorage::kAbsent: return "absent (tied to shared_embedding.weight on load)";
  }
  return "?";
}

LmHeadStorage Checkpoint::lm_head_storage() const {
  // A family whose descriptor has no lm_head (tied T5) reads the embedding.
  if (!find_tensor_spec(kLmHeadWeightName, config_)) return LmHeadStorage::kAbsent;
  if (!contains(kLmHeadWeightName)) return LmHeadStorage::kAbsent;
  if (shares_storage(embedding_name(config_), kLmHeadWeightName)) return LmHeadStorage::kSharedStorage;
  const auto& meta = shards_[locate(kLmHeadWeightName).file].metadata;
  auto it = meta.find(kTiedMetadataKey);
  if (it != meta.end() && it->second == "tied") return LmHeadStorage::kRecordedTied;
  return LmHeadStorage::kSeparate;
}

bool Checkpoint::lm_head_is_tied() const {
  // T5 says it in config.json (tied: no lm_head tensor; untied: always its own).
  if (config_.family == ModelFamily::kT5) return config_.tie_word_embeddings;
  const LmHeadStorage storage = lm_head_storage();
  if (storage == LmHeadStorage::kAbsent || storage == LmHeadStorage::kSharedStorage) return true;
  // Separate copies (even ones recorded as tied): the bytes decide.
  return same_values(embedding_name(config_), kLmHeadWeightName);
}

bool Checkpoint::same_values(const std::string& a, const std::string& b) const {
  const Located& x = locate(a);
  const Located& y = locate(b);
  if (x.record.dtype != y.record.dtype || x.record.shape != y.record.shape) return false;
  const uint8_t* px = files_[x.file]->data() + x.record.offset;
  const uint8_t* py = files_[y.file]->data() + y.record.offset;
  if (x.record.is_contiguous() && y.record.is_contiguous()) {
    return std::memcmp(px, py, x.record.nbytes()) == 0;
  }
  // Strided views (torch.save): walk both in logical order.
  const size_t elem = dtype_size(x.record.dtype);
  const auto& shape = x.record.shape;
  auto strides_of = [&](const TensorRecord& r) {
    std::vector<int64_t> s(shape.size(), 1);
    if (!r.strides.empty()) return r.strides;
    for (size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
    return s;
  };
  const std::vector<int64_t> sx = strides_of(x.record), sy = strides_of(y.record);
  std::vector<int64_t> index(shape.size(), 0);
  for (int64_t n = 0; n < x.record.numel(); ++n) {
    int64_t ox = 0, oy = 0;
    for (size_t d = 0; d < shape.size(); ++d) {
      ox += index[d] * sx[d];
      oy += index[d] * sy[d];
    }
    if (std::memcmp(px + ox * elem, py + oy * elem, elem) != 0) return false;
    for (size_t d = shape.size(); d-- > 0;) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return true;
}

uint64_t Checkpoint::bytes_on_disk() const {
  uint64_t total = 0;
  for (const auto& shard : shards_) total += shard.bytes;
  return total;
}

std::vector<std::string> Checkpoint::tokenizer_files() const {
  std::vector<std::string> present;
  for (const std::string& name : tokenizer_file_names()) {
    if (fs::is_regular_file(fs::path(dir_) / name)) present.push_back((fs::path(dir_) / name).string());
  }
  return present;
}

}  // namespace openba

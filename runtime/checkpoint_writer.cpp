#include "runtime/checkpoint_writer.h"

#include <fcntl.h>
#include <unistd.h>
#include <torch/torch.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "formats/safetensors.h"
#include "ops/torch_dtype.h"
#include "util/error.h"
#include "util/fs.h"

namespace openba {
namespace fs = std::filesystem;

struct CheckpointWriter::Shard {
  std::string file_name;
  std::string path;
  int fd = -1;
  std::vector<SafetensorsEntry> entries;
  uint64_t data_bytes = 0;
  ~Shard() {
    if (fd >= 0) ::close(fd);
  }
};

namespace {

void pwrite_all(int fd, const void* data, uint64_t size, uint64_t offset, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(size, 1ull << 30));
    const ssize_t n = ::pwrite(fd, p, chunk, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(path + ": write failed: " + std::strerror(errno));
    }
    p += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<uint64_t>(n);
  }
}

}  // namespace

CheckpointWriter::CheckpointWriter(const std::string& out_dir, ModelConfig config,
                                   WriterOptions options)
    : out_dir_(out_dir), config_(std::move(config)), options_(std::move(options)) {
  for (const std::string& input : options_.protected_paths) {
    if (path_is_same_or_inside(out_dir_, input)) {
      throw Error(out_dir_ + ": output directory is, or lies inside, the input " + input +
                  " (never overwrite an input)");
    }
    if (options_.overwrite && path_is_same_or_inside(input, out_dir_)) {
      throw Error(out_dir_ + ": replacing this directory would delete the input " + input);
    }
  }
  if (fs::exists(out_dir_) && !options_.overwrite) {
    throw Error(out_dir_ + ": already exists (use --force to replace it)");
  }
  staging_ = std::make_unique<StagingDir>(out_dir_);
}

CheckpointWriter::~CheckpointWriter() = default;

const std::string& CheckpointWriter::staging_path() const { return staging_->path(); }

void CheckpointWriter::plan(const std::vector<PlannedTensor>& tensors) {
  if (planned_) throw Error("checkpoint writer: plan() called twice");
  planned_ = true;
  const uint64_t elem = dtype_size(config_.dtype);
  // Greedy packing in plan order; a tensor larger than the cap gets a shard alone.
  std::vector<std::vector<size_t>> groups(1);
  uint64_t current = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    int64_t numel = 0;
    if (!checked_numel(tensors[i].shape, &numel)) {
      throw Error("checkpoint writer: invalid shape for '" + tensors[i].name + "'");
    }
    const uint64_t bytes = static_cast<uint64_t>(numel) * elem;
    if (!groups.back().empty() && current + bytes > options_.max_shard_bytes) {
      groups.emplace_back();
      current = 0;
    }
    groups.back().push_back(i);
    current += bytes;
    total_tensor_bytes_ += bytes;
  }
  const size_t count = groups.size();
  for (size_t s = 0; s < count; ++s) {
    auto shard = std::make_unique<Shard>();
    if (count == 1) {
      shard->file_name = "model.safetensors";
    } else {
      char name[64];
      std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", s + 1, count);
      shard->file_name = name;
    }
    shard->path = (fs::path(staging_->path()) / shard->file_name).string();
    for (size_t i : groups[s]) shard->entries.push_back({tensors[i].name, config_.dtype, tensors[i].shape});
    std::vector<uint64_t> offsets;
    std::map<std::string, std::string> metadata = options_.metadata;
    metadata["format"] = "pt";
    const std::string header = build_safetensors_header(shard->entries, metadata, &offsets);
    shard->fd = ::open(shard->path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (shard->fd < 0) throw Error(shard->path + ": cannot create: " + std::strerror(errno));
    pwrite_all(shard->fd, header.data(), header.size(), 0, shard->path);
    for (size_t k = 0; k < groups[s].size(); ++k) {
      const PlannedTensor& t = tensors[groups[s][k]];
      Slot slot;
      slot.shard = s;
      slot.offset = header.size() + offsets[k];
      slot.shape = t.shape;
      if (slot_index_.count(t.name)) throw Error("checkpoint writer: tensor '" + t.name + "' planned twice");
      slot_index_[t.name] = slots_.size();
      slots_.emplace_back(t.name, std::move(slot));
    }
    int64_t numel_total = 0;
    for (const auto& e : shard->entries) {
      int64_t n = 0;
      checked_numel(e.shape, &n);
      numel_total += n;
    }
    shard->data_bytes = static_cast<uint64_t>(numel_total) * elem;
    // Size the file now: unwritten regions read as zeros, but commit() refuses
    // to finish until every tensor has been written.
    if (::ftruncate(shard->fd, static_cast<off_t>(header.size() + shard->data_bytes)) != 0) {
      throw Error(shard->path + ": cannot size file: " + std::strerror(errno));
    }
    shards_.push_back(std::move(shard));
  }
}

CheckpointWriter::Slot& CheckpointWriter::slot(const std::string& name) {
  auto it = slot_index_.find(name);
  if (it == slot_index_.end()) throw Error("checkpoint writer: tensor '" + name + "' was not planned");
  return slots_[it->second].second;
}

void CheckpointWriter::write(const std::string& name, const at::Tensor& tensor) {
  if (!planned_) throw Error("checkpoint writer: write() before plan()");
  Slot& s = slot(name);
  if (s.written) throw Error("checkpoint writer: tensor '" + name + "' written twice");
  if (tensor.sizes().vec() != s.shape) {
    throw Error("checkpoint writer: tensor '" + name + "' has shape " +
                c10::str(tensor.sizes()) + " but was planned as " + c10::str(c10::IntArrayRef(s.shape)));
  }
  at::Tensor data = tensor.detach().to(torch::kCPU, to_scalar_type(config_.dtype)).contiguous();
  const uint64_t bytes = static_cast<uint64_t>(data.numel()) * data.element_size();
  Shard& shard = *shards_[s.shard];
  pwrite_all(shard.fd, data.data_ptr(), bytes, s.offset, shard.path);
  s.written = true;
  bytes_written_ += bytes;
}

void CheckpointWriter::copy_file(const std::string& source_path) {
  const fs::path target = fs::path(staging_->path()) / fs::path(source_path).filename();
  std::error_code ec;
  fs::copy_file(source_path, target, fs::copy_options::overwrite_existing, ec);
  if (ec) throw Error(source_path + ": cannot copy into the output: " + ec.message());
}

void CheckpointWriter::add_text_file(const std::string& file_name, const std::string& content) {
  write_file_durably((fs::path(staging_->path()) / file_name).string(), content);
}

std::string CheckpointWriter::commit() {
  if (!planned_) throw Error("checkpoint writer: commit() before plan()");
  for (const auto& [name, s] : slots_) {
    if (!s.written) throw Error("checkpoint writer: tensor '" + name + "' was planned but never written");
  }
  for (auto& shard : shards_) {
    if (::fsync(shard->fd) != 0 || ::close(shard->fd) != 0) {
      shard->fd = -1;
      throw Error(shard->path + ": fsync/close failed: " + std::strerror(errno));
    }
    shard->fd = -1;
  }
  if (shards_.size() > 1) {
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", total_tensor_bytes_}};
    nlohmann::ordered_json map = nlohmann::ordered_json::object();
    for (const auto& [name, s] : slots_) map[name] = shards_[s.shard]->file_name;
    index["weight_map"] = map;
    add_text_file("model.safetensors.index.json", index.dump(2) + "\n");
  }
  add_text_file("config.json", to_hf_config_json(config_));
  staging_->commit(options_.overwrite);
  return staging_->final_path();
}

}  // namespace openba

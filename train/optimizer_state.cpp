#include "train/optimizer_state.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <regex>

#include "formats/mapped_file.h"
#include "formats/safetensors.h"
#include "util/error.h"

namespace openba {
namespace fs = std::filesystem;

std::string optimizer_shard_file_name(int rank, int world_size) {
  char name[64];
  std::snprintf(name, sizeof(name), "optimizer-rank-%05d-of-%05d.safetensors", rank, world_size);
  return name;
}

std::string optimizer_piece_key(const std::string& kind, const std::string& name, int64_t offset) {
  return kind + "." + name + "@" + std::to_string(offset);
}

OptimizerStateReader OptimizerStateReader::open(const std::string& dir) {
  OptimizerStateReader reader;
  std::vector<std::string> files;
  const fs::path full = fs::path(dir) / kFullOptimizerFile;
  if (fs::exists(full)) {
    files.push_back(full.string());
    reader.description_ = full.string();
  } else {
    const std::regex pattern(R"(optimizer-rank-(\d{5})-of-(\d{5})\.safetensors)");
    int world = -1;
    std::vector<bool> seen;
    if (fs::is_directory(dir)) {
      for (const auto& entry : fs::directory_iterator(dir)) {
        std::smatch m;
        const std::string name = entry.path().filename().string();
        if (!std::regex_match(name, m, pattern)) continue;
        const int rank = std::stoi(m[1]), of = std::stoi(m[2]);
        if (world == -1) {
          world = of;
          seen.assign(static_cast<size_t>(of), false);
        }
        if (of != world || rank >= of) {
          throw Error(dir + ": optimizer shard files of different world sizes (" + name + ")");
        }
        seen[static_cast<size_t>(rank)] = true;
      }
    }
    if (world <= 0) {
      throw Error(dir + ": no optimizer state (" + kFullOptimizerFile + " or optimizer-rank-*-of-*.safetensors)");
    }
    for (int r = 0; r < world; ++r) {
      if (!seen[static_cast<size_t>(r)]) {
        throw Error(dir + ": optimizer state is incomplete: " + optimizer_shard_file_name(r, world) + " is missing");
      }
      files.push_back((fs::path(dir) / optimizer_shard_file_name(r, world)).string());
    }
    reader.description_ = dir + " (optimizer state sharded over " + std::to_string(world) + " ranks)";
  }
  for (size_t f = 0; f < files.size(); ++f) {
    reader.files_.push_back(MappedFile::open(files[f]));
    reader.file_names_.push_back(files[f]);
    const SafetensorsFile parsed = parse_safetensors(reader.files_.back()->data(), reader.files_.back()->size(), files[f]);
    for (const TensorRecord& r : parsed.tensors) {
      if (r.dtype != DType::F32) throw Error(files[f] + ": optimizer tensor '" + r.name + "' is not F32");
      Piece p;
      p.file = f;
      p.byte_offset = r.offset;
      p.length = static_cast<int64_t>(r.nbytes() / 4);
      std::string key = r.name;
      const size_t at = r.name.rfind('@');
      if (at != std::string::npos) {
        key = r.name.substr(0, at);
        try {
          p.offset = std::stoll(r.name.substr(at + 1));
        } catch (const std::exception&) {
          throw Error(files[f] + ": malformed optimizer piece name '" + r.name + "'");
        }
      } else {
        p.whole = true;
      }
      reader.pieces_[key].push_back(p);
    }
  }
  for (auto& [key, list] : reader.pieces_) {
    std::sort(list.begin(), list.end(), [](const Piece& a, const Piece& b) { return a.offset < b.offset; });
  }
  return reader;
}

void OptimizerStateReader::read(const std::string& kind, const std::string& name, int64_t offset,
                                int64_t param_numel, torch::Tensor dest) const {
  const std::string key = kind + "." + name;
  auto it = pieces_.find(key);
  if (it == pieces_.end()) {
    throw Error(description_ + ": optimizer state has no '" + key + "' (a checkpoint of another model?)");
  }
  const int64_t n = dest.numel();
  float* out = dest.data_ptr<float>();
  int64_t covered = 0;
  int64_t total = 0;
  for (const Piece& p : it->second) {
    total += p.length;
    if (p.whole && p.length != param_numel) {
      throw Error(description_ + ": optimizer state '" + key + "' has " + std::to_string(p.length) +
                  " elements but the parameter has " + std::to_string(param_numel));
    }
    const int64_t lo = std::max(offset, p.offset), hi = std::min(offset + n, p.offset + p.length);
    if (lo >= hi) continue;
    std::memcpy(out + (lo - offset), files_[p.file]->data() + p.byte_offset + 4 * (lo - p.offset),
                static_cast<size_t>(hi - lo) * 4);
    covered += hi - lo;
  }
  if (total != param_numel) {
    throw Error(description_ + ": optimizer state '" + key + "' holds " + std::to_string(total) +
                " elements but the parameter has " + std::to_string(param_numel) + " (a checkpoint of another model?)");
  }
  if (covered != n) {
    throw Error(description_ + ": optimizer state '" + key + "' does not cover elements [" + std::to_string(offset) +
                ", " + std::to_string(offset + n) + ")");
  }
}

}  // namespace openba

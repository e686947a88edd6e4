// An opened Hugging Face checkpoint directory (config.json + safetensors or
// torch.save .bin weights, single file or sharded with an index).
//
// Opening reads config.json, the index and each file's header/directory only:
// tensor bytes stay on disk (memory-mapped) until tensor() is called, so a
// 30 GB model can be streamed through a 24 GB machine one block at a time.
// Opening validates the whole layout against the config: missing, unexpected
// or misshapen tensors are errors naming the file and tensor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "arch/openba/config.h"
#include "formats/tensor_record.h"

namespace at {
class Tensor;
}

namespace openba {

class MappedFile;

struct CheckpointShard {
  std::string path;
  uint64_t bytes = 0;
  std::vector<std::string> tensor_names;
  std::map<std::string, std::string> metadata;  // safetensors __metadata__
};

// How lm_head.weight relates to shared_embedding.weight on disk.
enum class LmHeadStorage {
  kSharedStorage,  // one storage under both names (torch.save of the released model)
  kRecordedTied,   // separate copies, recorded as tied by the writer (our outputs)
  kSeparate,       // separate copies of unknown relation (compare to know)
  kAbsent,         // only the embedding is stored; re-tied on load
};
const char* lm_head_storage_name(LmHeadStorage storage);

// safetensors __metadata__ key our writer sets when lm_head.weight is the embedding.
inline const char* kTiedMetadataKey = "openba.lm_head";

class Checkpoint {
 public:
  // Throws Error naming the directory/file/tensor at fault.
  static Checkpoint open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  // "safetensors" or "torch" (.bin).
  const std::string& format() const { return format_; }
  // Reconciled with the tensor shapes (FFN width and vocabulary rows).
  const ModelConfig& config() const { return config_; }

  // Tensor names in canonical layout order.
  const std::vector<std::string>& tensor_names() const { return names_; }
  bool contains(const std::string& name) const { return records_.count(name) != 0; }
  // Throws Error naming the tensor if absent.
  const TensorRecord& record(const std::string& name) const;

  // The tensor as stored (dtype and shape from the file). Zero-copy over the
  // mapping when aligned; the mapping stays alive as long as the tensor does.
  // (Defined in the torch library, openba_model; everything else here is torch-free.)
  at::Tensor tensor(const std::string& name) const;
  // True when two tensors hold identical bytes (same dtype and shape).
  bool same_values(const std::string& a, const std::string& b) const;
  // Lets the kernel drop the pages of a tensor the caller has finished with.
  void release(const std::string& name) const;

  // True when two names refer to the same bytes on disk (torch.save ties).
  bool shares_storage(const std::string& a, const std::string& b) const;
  // True when lm_head.weight is the embedding: shared storage, or (for
  // formats that cannot share) identical bytes. Reads both tensors when
  // they are stored separately.
  bool lm_head_is_tied() const;
  // What the files say about the tie, without reading tensor data.
  LmHeadStorage lm_head_storage() const;

  const std::vector<CheckpointShard>& shards() const { return shards_; }
  uint64_t bytes_on_disk() const;
  // Tokenizer files present next to the weights (spiece.model, ...).
  std::vector<std::string> tokenizer_files() const;

 private:
  struct Located {
    TensorRecord record;
    size_t file = 0;  // index into files_
  };
  std::string dir_;
  std::string format_;
  ModelConfig config_;
  std::vector<std::shared_ptr<MappedFile>> files_;
  std::vector<CheckpointShard> shards_;
  std::map<std::string, Located> records_;
  std::vector<std::string> names_;

  const Located& locate(const std::string& name) const;
};

// Names of the tokenizer files a checkpoint directory may carry.
const std::vector<std::string>& tokenizer_file_names();

}  // namespace openba

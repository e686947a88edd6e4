// A restricted reader for the pickle inside a torch.save archive (data.pkl).
//
// It interprets only what a state dict needs: dicts/OrderedDicts, tuples,
// lists, scalars, strings, persistent ids naming storages, and the globals
// collections.OrderedDict, torch._utils._rebuild_tensor_v2,
// torch._utils._rebuild_parameter and torch.<Type>Storage. Any other global or
// opcode is rejected with an Error naming the byte offset; nothing is ever
// executed. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/dtype.h"

namespace openba {

struct PickledTensor {
  std::string name;
  DType dtype = DType::F32;
  std::string storage_key;      // names the archive entry <prefix>/data/<key>
  int64_t storage_numel = 0;    // elements in the storage
  int64_t storage_offset = 0;   // in elements
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
};

// Parses a state-dict pickle: the top-level object must be a dict whose keys
// are strings and whose values are tensors. Order is preserved.
std::vector<PickledTensor> parse_state_dict_pickle(const uint8_t* data, uint64_t size,
                                                   const std::string& source);

}  // namespace openba

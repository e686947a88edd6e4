// torch.save (.bin) files as written since PyTorch 1.6: a zip archive with
// <prefix>/data.pkl (the state dict pickle) and one stored entry
// <prefix>/data/<key> per storage. This locates every tensor's bytes without
// reading them. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/tensor_record.h"

namespace openba {

// Throws Error naming `source` and the tensor for anything unreadable:
// compressed or missing storages, storages whose size disagrees with the
// pickle, views reaching outside their storage, big-endian archives,
// duplicate names, or a pickle that is not a plain state dict.
std::vector<TensorRecord> read_torch_bin_index(const uint8_t* file, uint64_t size,
                                               const std::string& source);

}  // namespace openba

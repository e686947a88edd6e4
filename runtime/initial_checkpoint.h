// A randomly initialized checkpoint written straight to disk, one tensor at
// a time (bounded memory at any size), with the family's init rules
// (arch/openba/init.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "arch/openba/config.h"
#include "arch/openba/init.h"

namespace openba {

struct WriterOptions;

struct WrittenCheckpoint {
  std::string path;
  uint64_t bytes = 0;  // weight bytes written
};
// In config.dtype, with `tokenizer_files` copied in. The progress line
// counts bytes when `show_progress`.
WrittenCheckpoint write_initialized_checkpoint(const ModelConfig& config, const std::string& out_dir, uint64_t seed,
                                               InitScheme scheme, const WriterOptions& options,
                                               const std::vector<std::string>& tokenizer_files, bool show_progress);

}  // namespace openba

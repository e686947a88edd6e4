// libFuzzer target: a whole torch.save (.bin) file, zip directory and pickle
// included. Malformed input must end in openba::Error, never a crash.
#include <cstddef>
#include <cstdint>

#include "formats/torch_bin.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto tensors = openba::read_torch_bin_index(data, size, "fuzz.bin");
    for (const auto& t : tensors) {
      if (t.offset + t.span_bytes > size) __builtin_trap();
    }
  } catch (const openba::Error&) {
  }
  return 0;
}

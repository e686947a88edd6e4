// libFuzzer target: the safetensors header parser must refuse any malformed
// file with openba::Error, never crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>

#include "formats/safetensors.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = openba::parse_safetensors(data, size, "fuzz.safetensors");
    // Everything the parser accepted must lie inside the input.
    for (const auto& t : file.tensors) {
      if (t.offset + t.span_bytes > size) __builtin_trap();
    }
  } catch (const openba::Error&) {
  }
  return 0;
}

// libFuzzer target: the restricted unpickler on raw data.pkl bytes (reached
// far more often than through a zip archive).
#include <cstddef>
#include <cstdint>

#include "formats/torch_pickle.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    openba::parse_state_dict_pickle(data, size, "fuzz.pkl");
  } catch (const openba::Error&) {
  }
  return 0;
}

#include "util/resources.h"

#include <cstdio>
#include <cstring>

namespace openba {
namespace {
uint64_t read_status_kib(const char* key) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  uint64_t value = 0;
  const size_t key_len = std::strlen(key);
  while (std::fgets(line, sizeof(line), f)) {
    if (std::strncmp(line, key, key_len) == 0) {
      unsigned long long kib = 0;
      if (std::sscanf(line + key_len, " %llu", &kib) == 1) value = kib;
      break;
    }
  }
  std::fclose(f);
  return value * 1024;
}
}  // namespace

uint64_t peak_rss_bytes() { return read_status_kib("VmHWM:"); }
uint64_t current_rss_bytes() { return read_status_kib("VmRSS:"); }

}  // namespace openba

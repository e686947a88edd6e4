// What every openba-* main shares: error reporting with a non-zero exit,
// thread setup, and size parsing for flags.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace openba {

// Runs `body`, turning openba::Error, c10::Error and CLI parse errors into a
// one-line "<tool>: error: ..." on stderr with exit code 1 (2 for usage).
int run_tool(const char* tool, const std::function<int()>& body);

// CPU threads for BLAS and our kernels (0 = all cores); see model/cpu_runtime.h.
void configure_threads(int threads);

// "5GB", "500MB", "2GiB", "1048576" -> bytes; Error naming the flag otherwise.
uint64_t parse_byte_size(const std::string& text, const std::string& flag);

}  // namespace openba

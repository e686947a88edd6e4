// What every openba-* main shares, without LibTorch: error reporting with a
// non-zero exit, and size parsing for flags.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace openba {

// Runs `body`, turning openba::Error into a one-line "<tool>: error: ..." on
// stderr with exit code 1; ends with parse_command_line's code on --help or
// a usage error.
int run_tool(const char* tool, const std::function<int()>& body);

// Parses the command line. On --help, prints the help and ends the tool with
// exit code 0; on a usage error, prints it and ends with exit code 2.
void parse_command_line(CLI::App& app, int argc, char** argv);

// "5GB", "500MB", "2GiB", "1048576" -> bytes; Error naming the flag otherwise.
uint64_t parse_byte_size(const std::string& text, const std::string& flag);

// "0,32099" -> {0, 32099}: comma-separated integers, each at least `min`;
// Error naming the flag and the item otherwise.
std::vector<int64_t> parse_int_list(const std::string& text, const std::string& flag, int64_t min);

}  // namespace openba

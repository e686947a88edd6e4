#include "tools/cli_common.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>

#include "util/error.h"

namespace openba {
namespace {

// Thrown by parse_command_line to end the tool with a given exit code.
struct ToolExit {
  int code;
};

}  // namespace

void parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints the help, or the usage error
    throw ToolExit{code == 0 ? 0 : 2};
  }
}

int run_tool(const char* tool, const std::function<int()>& body) {
  try {
    return body();
  } catch (const ToolExit& e) {
    return e.code;
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", tool, e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", tool, e.what());
    return 1;
  }
}

uint64_t parse_byte_size(const std::string& text, const std::string& flag) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) throw Error(flag + ": '" + text + "' is not a size (e.g. 5GB, 500MB)");
  double value = 0;
  try {
    value = std::stod(text.substr(0, i));
  } catch (...) {
    throw Error(flag + ": '" + text + "' is not a size");
  }
  std::string unit = text.substr(i);
  for (auto& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  double scale = 1;
  if (unit == "" || unit == "B") scale = 1;
  else if (unit == "KB") scale = 1e3;
  else if (unit == "MB") scale = 1e6;
  else if (unit == "GB") scale = 1e9;
  else if (unit == "KIB") scale = 1024.0;
  else if (unit == "MIB") scale = 1024.0 * 1024;
  else if (unit == "GIB") scale = 1024.0 * 1024 * 1024;
  else throw Error(flag + ": unknown unit in '" + text + "' (use B, KB, MB, GB, KiB, MiB, GiB)");
  const double bytes = value * scale;
  if (!(bytes >= 1)) throw Error(flag + ": size must be at least 1 byte");
  return static_cast<uint64_t>(bytes);
}

std::vector<int64_t> parse_int_list(const std::string& text, const std::string& flag, int64_t min) {
  std::vector<int64_t> values;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, end - begin);
    size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size()) {
      throw Error(flag + ": '" + item + "' is not an integer (expected comma-separated integers)");
    }
    if (value < min) throw Error(flag + ": " + item + " is below " + std::to_string(min));
    values.push_back(value);
    begin = end + 1;
  }
  return values;
}

}  // namespace openba

// The one table of a stage's options: each is a flag of openba-compress
// ("--keep-decoder-layers 8") and a YAML key, the flag name without the
// leading dashes ("keep-decoder-layers: 8"), read by `openba-compress
// --config` and by the steps of a pipeline file, so a stage reads the same
// in all three.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "compress/compress.h"

namespace CLI {
class App;
}

namespace openba {

class ConfigNode;

struct CompressKey {
  std::string key;   // flag name without "--"
  std::string help;  // the flag's --help text
  std::function<void(const ConfigNode& node, const std::string& key, CompressOptions& o)> read;
  // Declares --key on a CLI11 app, writing into o.
  std::function<void(CLI::App& app, const std::string& flag, CompressOptions& o)> add_flag;
};

// Every option a stage reads from YAML (not --stage, --model, --out: a
// pipeline sets those itself).
const std::vector<CompressKey>& compress_yaml_keys();

// Reads every key of compress_yaml_keys() present in `node` into `o`,
// except those listed in `skip` (given on the command line: flags win).
void read_compress_yaml(const ConfigNode& node, CompressOptions& o, const std::vector<std::string>& skip = {});

// Declares every key of compress_yaml_keys() as a flag of `app`.
void add_compress_flags(CLI::App& app, CompressOptions& o);

}  // namespace openba

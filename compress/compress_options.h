// CompressOptions from YAML: the keys are openba-compress's flag names
// without the leading dashes ("keep-decoder-layers: 8"). Shared by
// `openba-compress --config` and the steps of a pipeline file, so a stage
// reads the same in both.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "compress/compress.h"

namespace openba {

class ConfigNode;

struct CompressKey {
  std::string key;  // flag name without "--"
  std::function<void(const ConfigNode& node, const std::string& key, CompressOptions& o)> read;
};

// Every option a stage reads from YAML (not --stage, --model, --out: a
// pipeline sets those itself).
const std::vector<CompressKey>& compress_yaml_keys();

// Reads every key of compress_yaml_keys() present in `node` into `o`,
// except those listed in `skip` (given on the command line: flags win).
void read_compress_yaml(const ConfigNode& node, CompressOptions& o, const std::vector<std::string>& skip = {});

}  // namespace openba

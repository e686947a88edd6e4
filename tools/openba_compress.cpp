// openba-compress: one pruning stage (layer, neuron or vocab) on a checkpoint
// directory, producing a smaller checkpoint directory plus report.json; or,
// with --pipeline, a whole staged run (pipeline/pipeline.h).
// Options come from flags or a YAML file (--config; keys are the flag names
// without the leading dashes, compress/compress_options.h), flags winning;
// --set KEY=VALUE overrides YAML.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include "compress/compress.h"
#include "compress/compress_options.h"
#include "pipeline/pipeline.h"
#include "tools/cli_common.h"
#include "tools/torch_tool.h"
#include "util/config_node.h"
#include "util/error.h"

namespace {

std::string self_dir() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  return std::filesystem::path(buf).parent_path().string();
}

}  // namespace

int main(int argc, char** argv) {
  return openba::run_torch_tool("openba-compress", [&] {
    CLI::App app{"One compression stage (layer | neuron | vocab) on an OpenBA checkpoint directory, or a whole --pipeline."};
    openba::CompressOptions o;
    std::string config_path, shard_size = "5GB";
    std::vector<std::string> overrides;
    int threads = 0;
    app.add_option("--stage", o.stage, "layer, neuron (width) or vocab");
    app.add_option("--model", o.model, "input checkpoint directory");
    app.add_option("--out", o.out, "output checkpoint directory");
    app.add_option("--config", config_path, "YAML with any of these options (keys = flag names without --)");
    app.add_option("--set", overrides, "KEY=VALUE override of the YAML (repeatable)");
    auto* force = app.add_flag("--force", o.force, "replace OUT if it exists");
    auto* quiet = app.add_flag("--quiet", o.quiet, "no progress output");
    openba::add_compress_flags(app, o);  // every stage option, also a YAML key (compress/compress_options.h)
    app.add_option("--shard-size", shard_size, "maximum bytes per output shard (default 5GB)");
    app.add_option("--threads", threads, "CPU threads (default: all cores)");
    openba::PipelineRun pipeline;
    std::string& until = pipeline.until;
    std::string& from = pipeline.from;
    app.add_option("--pipeline", pipeline.file, "run every step of a pipeline file (configs/pipelines/*.yaml) into --out RUN_DIR");
    app.add_option("--until", until, "pipeline: stop after this step (number, NN-kind directory or step name)");
    app.add_option("--from", from, "pipeline: run again from this step (the steps before it must be complete)");
    openba::parse_command_line(app, argc, argv);

    if (!pipeline.file.empty()) {
      if (!config_path.empty() || !overrides.empty()) throw openba::Error("--pipeline: stage options belong in the pipeline file, not --config/--set");
      for (const auto* opt : app.get_options()) {
        const std::string name = opt->get_name();
        if (opt->count() > 0 && name != "--pipeline" && name != "--out" && name != "--until" && name != "--from" &&
            name != "--quiet" && name != "--threads" && name != "--tokenize-tool") {
          throw openba::Error("--pipeline: " + name + " belongs in the pipeline file (the steps' options)");
        }
      }
      if (o.out.empty()) throw openba::Error("--pipeline needs --out RUN_DIR");
      pipeline.run_dir = o.out;
      pipeline.quiet = o.quiet;
      pipeline.tools_dir = self_dir();
      pipeline.tokenize_tool = o.tokenize_tool.empty() ? self_dir() + "/openba-tokenize" : o.tokenize_tool;
      for (int i = 0; i < argc; ++i) pipeline.command_line += (i ? " " : "") + std::string(argv[i]);
      openba::configure_threads(threads);
      return openba::run_pipeline(pipeline);
    }
    if (!until.empty() || !from.empty()) throw openba::Error("--until/--from select steps of a --pipeline");
    if (!config_path.empty()) {
      const openba::ConfigNode node = openba::ConfigNode::load(config_path, overrides);
      // Flags win over the YAML.
      std::vector<std::string> given;
      for (const auto& k : openba::compress_yaml_keys()) {
        if (app.get_option("--" + k.key)->count() > 0) given.push_back(k.key);
      }
      openba::read_compress_yaml(node, o, given);
      auto yaml_string = [&](const char* key, std::string& target) {
        if (node.has(key) && app.get_option(std::string("--") + key)->count() == 0) target = node.get_string(key, target);
      };
      yaml_string("stage", o.stage);
      yaml_string("model", o.model);
      yaml_string("out", o.out);
      yaml_string("shard-size", shard_size);
      if (node.has("force") && force->count() == 0) o.force = node.get_bool("force", o.force);
      if (node.has("quiet") && quiet->count() == 0) o.quiet = node.get_bool("quiet", o.quiet);
      if (node.has("threads") && threads == 0) threads = static_cast<int>(node.get_int("threads", 0));
      node.finish();
    } else if (!overrides.empty()) {
      throw openba::Error("--set needs --config FILE");
    }
    o.max_shard_bytes = openba::parse_byte_size(shard_size, "--shard-size");
    if (o.tokenize_tool.empty()) o.tokenize_tool = self_dir() + "/openba-tokenize";
    for (int i = 0; i < argc; ++i) o.command_line += (i ? " " : "") + std::string(argv[i]);
    openba::configure_threads(threads);
    openba::run_compress(o);
    return 0;
  });
}

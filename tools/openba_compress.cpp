// openba-compress: one pruning stage (layer, neuron or vocab) on a checkpoint
// directory, producing a smaller checkpoint directory plus report.json.
// Options come from flags or a YAML file (--config; keys are the flag names
// without the leading dashes), flags winning; --set KEY=VALUE overrides YAML.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <unistd.h>

#include "compress/compress.h"
#include "tools/cli_common.h"
#include "tools/torch_tool.h"
#include "util/config_node.h"
#include "util/error.h"

namespace {

// A flag that may also come from the YAML config.
struct Binding {
  CLI::Option* option;
  std::function<void(const openba::ConfigNode&, const std::string&)> from_yaml;
};

std::string self_dir() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  return std::filesystem::path(buf).parent_path().string();
}

// "4,8" or a YAML list [4, 8].
std::string yaml_list(const openba::ConfigNode& node, const std::string& key) {
  const auto values = node.get_doubles(key, {});
  if (values.empty()) return node.get_string(key, "");
  std::string out;
  for (double v : values) out += (out.empty() ? "" : ",") + std::to_string(static_cast<long long>(v));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  return openba::run_torch_tool("openba-compress", [&] {
    CLI::App app{"One compression stage (layer | neuron | vocab) on an OpenBA checkpoint directory."};
    openba::CompressOptions o;
    std::string config_path, shard_size = "5GB";
    std::vector<std::string> overrides;
    int threads = 0;
    std::vector<Binding> bindings;
    auto str = [&](const std::string& flag, std::string& target, const std::string& help) {
      auto* opt = app.add_option(flag, target, help);
      bindings.push_back({opt, [&target](const openba::ConfigNode& n, const std::string& k) { target = n.get_string(k, target); }});
    };
    auto list = [&](const std::string& flag, std::string& target, const std::string& help) {
      auto* opt = app.add_option(flag, target, help);
      bindings.push_back({opt, [&target](const openba::ConfigNode& n, const std::string& k) { target = yaml_list(n, k); }});
    };
    auto num = [&](const std::string& flag, int64_t& target, const std::string& help) {
      auto* opt = app.add_option(flag, target, help);
      bindings.push_back({opt, [&target](const openba::ConfigNode& n, const std::string& k) { target = n.get_int(k, target); }});
    };
    auto unum = [&](const std::string& flag, auto& target, const std::string& help) {
      auto* opt = app.add_option(flag, target, help);
      bindings.push_back({opt, [&target](const openba::ConfigNode& n, const std::string& k) {
                            const int64_t v = n.get_int(k, static_cast<int64_t>(target));
                            if (v < 0) throw openba::Error(n.where(k) + ": " + k + " must not be negative");
                            target = static_cast<std::remove_reference_t<decltype(target)>>(v);
                          }});
    };
    str("--stage", o.stage, "layer, neuron (width) or vocab");
    str("--model", o.model, "input checkpoint directory");
    str("--out", o.out, "output checkpoint directory");
    app.add_option("--config", config_path, "YAML with any of these options (keys = flag names without --)");
    app.add_option("--set", overrides, "KEY=VALUE override of the YAML (repeatable)");
    auto* force = app.add_flag("--force", o.force, "replace OUT if it exists");
    auto* quiet = app.add_flag("--quiet", o.quiet, "no progress output");
    str("--calib", o.calib, "calibration token shards (the model's tokenizer)");
    num("--calib-samples", o.calib_samples, "calibration UL2 examples (default 1024)");
    str("--eval", o.eval, "held-out token shards: loss before/after, per UL2 denoiser");
    num("--eval-samples", o.eval_samples, "held-out examples per denoiser (default 16)");
    num("--encoder-tokens", o.encoder_tokens, "encoder length of the UL2 examples (default 570)");
    num("--decoder-tokens", o.decoder_tokens, "decoder length of the UL2 examples (default 381)");
    unum("--batch-size", o.batch_size, "examples per batch (default 16)");
    unum("--max-batch-tokens", o.max_batch_tokens, "padded tokens per batch (default 16384)");
    unum("--seed", o.seed, "seed of --score random (default 0)");
    unum("--data-seed", o.data_seed, "seed of the calibration and held-out draws (default 0)");
    str("--score", o.score, "layer: angular (default) | loss; neuron: activation (default) | magnitude | taylor | random");
    str("--save-scores", o.save_scores, "write the importance scores (JSON) here");
    str("--scores", o.scores_file, "reuse saved scores instead of a calibration pass");
    str("--shard-size", shard_size, "maximum bytes per output shard (default 5GB)");
    list("--drop-encoder-layers", o.drop_encoder_layers, "encoder layers to drop, input numbering (4,8)");
    list("--drop-decoder-layers", o.drop_decoder_layers, "decoder layers to drop, input numbering");
    num("--keep-encoder-layers", o.keep_encoder_layers, "keep the N highest-scoring encoder layers");
    num("--keep-decoder-layers", o.keep_decoder_layers, "keep the N highest-scoring decoder layers");
    num("--ffn", o.ffn, "FFN neurons per layer to keep");
    num("--heads", o.heads, "attention heads per layer to keep (self and cross)");
    num("--hidden", o.hidden, "hidden channels to keep");
    num("--round-to", o.round_to, "keep FFN/hidden sizes multiples of M (default 64)");
    num("--vocab", o.vocab, "SentencePiece pieces to keep (sentinels and <R>/<S>/<X> come on top)");
    num("--min-freq", o.min_freq, "also drop pieces seen fewer times than this (default 0)");
    auto* corpus = app.add_option("--corpus", o.corpus, "token shards to count piece frequencies on (default: --calib)");
    str("--tokenize-tool", o.tokenize_tool, "openba-tokenize for the tokenizer check (default: next to this tool)");
    app.add_option("--threads", threads, "CPU threads (default: all cores)");
    openba::parse_command_line(app, argc, argv);

    if (!config_path.empty()) {
      const openba::ConfigNode node = openba::ConfigNode::load(config_path, overrides);
      for (const auto& b : bindings) {
        const std::string key = b.option->get_name().substr(2);
        if (node.has(key) && b.option->count() == 0) b.from_yaml(node, key);
      }
      if (node.has("force") && force->count() == 0) o.force = node.get_bool("force", o.force);
      if (node.has("quiet") && quiet->count() == 0) o.quiet = node.get_bool("quiet", o.quiet);
      if (node.has("corpus") && corpus->count() == 0) o.corpus = {node.get_string("corpus", "")};
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

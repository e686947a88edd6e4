// openba-init: a randomly initialized OpenBA checkpoint directory from a
// model config, streamed to disk one tensor at a time (so even the 15B
// config initializes in bounded memory).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <torch/torch.h>

#include "runtime/checkpoint.h"
#include "runtime/checkpoint_writer.h"
#include "arch/openba/config.h"
#include "arch/openba/init.h"
#include "runtime/initial_checkpoint.h"
#include "arch/openba/layout.h"
#include "tokenizer/layout.h"
#include "tools/cli_common.h"
#include "util/error.h"
#include "tools/torch_tool.h"
#include "util/format.h"
#include "util/progress.h"

int main(int argc, char** argv) {
  return openba::run_torch_tool("openba-init", [&] {
    CLI::App app{"Write a randomly initialized OpenBA checkpoint directory."};
    std::string config_path, out_dir, dtype_flag, shard_size = "5GB", init = "megatron", tokenizer_dir;
    uint64_t seed = 0;
    bool force = false, quiet = false;
    int threads = 0;
    app.add_option("--config", config_path,
                   "model config: our YAML (configs/models/*.yaml), or a Hugging Face config.json (OpenBA, or the "
                   "T5 family: t5, mt5, Flan-T5, UL2)")
        ->required();
    app.add_option("--out", out_dir, "output checkpoint directory")->required();
    app.add_option("--seed", seed, "random seed (default 0)");
    app.add_option("--dtype", dtype_flag, "storage dtype: f32, bf16 or f16 (default: the config's)");
    app.add_option("--init", init,
                   "megatron (default: N(0, 0.02) as OpenBA's pretraining) or hf (the HF _init_weights)");
    app.add_option("--tokenizer", tokenizer_dir,
                   "tokenizer directory: its files are copied in and the vocabulary rows follow it");
    app.add_option("--shard-size", shard_size, "maximum bytes per safetensors shard (default 5GB)");
    app.add_option("--threads", threads, "CPU threads (default: all cores)");
    app.add_flag("--force", force, "replace OUT if it exists");
    app.add_flag("--quiet", quiet, "no progress output");
    openba::parse_command_line(app, argc, argv);
    openba::configure_threads(threads);

    const openba::InitScheme scheme = openba::parse_init_scheme(init, "--init");
    openba::ModelConfig config = openba::load_model_config_file(config_path);
    if (!dtype_flag.empty()) config.dtype = openba::parse_float_dtype_flag(dtype_flag, "--dtype");
    std::vector<std::string> tokenizer_files;
    if (!tokenizer_dir.empty()) {
      const openba::TokenizerLayout tokenizer = openba::TokenizerLayout::load(tokenizer_dir);
      if (config.vocab_size != tokenizer.padded_vocab_rows()) {
        std::fprintf(stderr, "openba-init: vocabulary rows %d from the tokenizer (%d ids padded to a multiple of 128) "
                     "instead of the config's %lld\n", tokenizer.padded_vocab_rows(), tokenizer.vocab_size(),
                     (long long)config.vocab_size);
        config.vocab_size = tokenizer.padded_vocab_rows();
      }
      for (const std::string& name : openba::tokenizer_file_names()) {
        const std::string path = tokenizer_dir + "/" + name;
        if (std::filesystem::is_regular_file(path)) tokenizer_files.push_back(path);
      }
    }
    openba::WriterOptions options;
    options.max_shard_bytes = openba::parse_byte_size(shard_size, "--shard-size");
    options.overwrite = force;
    const openba::WrittenCheckpoint written =
        openba::write_initialized_checkpoint(config, out_dir, seed, scheme, options, tokenizer_files, !quiet);
    const auto params = openba::count_parameters(config);
    std::printf("wrote %s: %s parameters (%s), %s, %s\n", written.path.c_str(),
                openba::human_count(params.total).c_str(), config.summary().c_str(),
                openba::dtype_name(config.dtype), openba::human_bytes(written.bytes).c_str());
    return 0;
  });
}

// openba-inspect: what a checkpoint directory holds, without reading its
// tensors: architecture, parameters by component, dtypes, bytes on disk,
// shards, tokenizer files. --json for machines.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "runtime/checkpoint.h"
#include "arch/openba/layout.h"
#include "tools/cli_common.h"
#include "util/format.h"

namespace {

struct DtypeUsage {
  int64_t tensors = 0;
  uint64_t bytes = 0;
};

}  // namespace

int main(int argc, char** argv) {
  return openba::run_tool("openba-inspect", [&] {
    CLI::App app{"Describe a checkpoint directory (OpenBA or the T5 family) without loading its weights."};
    std::string dir;
    bool json = false, check_tie = false;
    app.add_option("dir", dir, "checkpoint directory")->required();
    app.add_flag("--json", json, "print JSON instead of tables");
    app.add_flag("--check-tie", check_tie,
                 "compare lm_head.weight with shared_embedding.weight when stored separately (reads both)");
    openba::parse_command_line(app, argc, argv);

    const openba::Checkpoint ck = openba::Checkpoint::open(dir);
    const openba::ModelConfig& c = ck.config();
    openba::LmHeadStorage storage = ck.lm_head_storage();
    std::string tie_text = openba::lm_head_storage_name(storage);
    bool tied = storage != openba::LmHeadStorage::kSeparate;
    if (check_tie && (storage == openba::LmHeadStorage::kSeparate ||
                      storage == openba::LmHeadStorage::kRecordedTied)) {
      tied = ck.lm_head_is_tied();
      tie_text = tied ? "separate copy, identical to shared_embedding.weight (checked)"
                      : "separate copy, differs from shared_embedding.weight (untied)";
    }
    const bool t5 = c.family == openba::ModelFamily::kT5;
    if (t5) {  // config.json decides
      tied = c.tie_word_embeddings;
      tie_text = tied ? "the embedding (tie_word_embeddings)" : "its own tensor (tie_word_embeddings false)";
    }
    const openba::ParameterBreakdown params = openba::count_parameters(c, tied);

    std::map<std::string, DtypeUsage> dtypes;
    for (const std::string& name : ck.tensor_names()) {
      const auto& r = ck.record(name);
      auto& usage = dtypes[openba::dtype_name(r.dtype)];
      usage.tensors += 1;
      usage.bytes += r.nbytes();
    }
    const auto tokenizer = ck.tokenizer_files();

    if (json) {
      nlohmann::ordered_json out;
      out["path"] = dir;
      out["format"] = ck.format();
      out["bytes_on_disk"] = ck.bytes_on_disk();
      out["config"] = {{"family", openba::model_family_name(c.family)},
                       {"model_type", c.model_type},
                       {"encoder_layers", c.encoder_layers},
                       {"decoder_layers", c.decoder_layers},
                       {"d_model", c.d_model},
                       {"num_heads", c.num_heads},
                       {"kv_channels", c.kv_channels},
                       {"attention_width", c.attention_width()},
                       {"ffn_hidden", c.ffn_hidden},
                       {"ffn_activation", openba::ffn_activation_name(c.ffn_activation)},
                       {"ffn_gated", c.ffn_gated},
                       {"vocab_size", c.vocab_size},
                       {"max_seq_length", c.max_seq_length},
                       {"decoder_max_seq_length", c.decoder_max_seq_length},
                       {"add_qkv_bias", c.add_qkv_bias},
                       {"add_ffn_bias", c.add_ffn_bias},
                       {"add_lm_head_bias", c.add_lm_head_bias},
                       {"tie_word_embeddings", c.tie_word_embeddings},
                       {"dtype", openba::dtype_name(c.dtype)}};
      if (t5) {
        out["config"]["relative_attention_num_buckets"] = c.relative_attention_num_buckets;
        out["config"]["relative_attention_max_distance"] = c.relative_attention_max_distance;
      }
      nlohmann::ordered_json by_component;
      for (int i = 0; i < openba::kComponentCount; ++i) {
        by_component[openba::component_name(static_cast<openba::Component>(i))] = params.by_component[i];
      }
      out["parameters"] = {{"total", params.total}, {"by_component", by_component}};
      out["lm_head_weight"] = tie_text;
      out["lm_head_tied"] = tied;
      nlohmann::ordered_json dt;
      for (const auto& [name, usage] : dtypes) dt[name] = {{"tensors", usage.tensors}, {"bytes", usage.bytes}};
      out["dtypes"] = dt;
      out["tensors"] = ck.tensor_names().size();
      nlohmann::ordered_json shards = nlohmann::ordered_json::array();
      for (const auto& s : ck.shards()) {
        shards.push_back({{"file", std::filesystem::path(s.path).filename().string()},
                          {"bytes", s.bytes},
                          {"tensors", s.tensor_names.size()}});
      }
      out["shards"] = shards;
      nlohmann::ordered_json tok = nlohmann::ordered_json::array();
      for (const auto& f : tokenizer) tok.push_back(std::filesystem::path(f).filename().string());
      out["tokenizer_files"] = tok;
      std::printf("%s\n", out.dump(2).c_str());
      return 0;
    }

    std::printf("checkpoint  %s\n", dir.c_str());
    std::printf("  format        %s, %zu shard(s), %s on disk, %zu tensors\n", ck.format().c_str(),
                ck.shards().size(), openba::human_bytes(ck.bytes_on_disk()).c_str(),
                ck.tensor_names().size());
    std::printf("architecture\n");
    std::printf("  layers        %lld encoder / %lld decoder\n", (long long)c.encoder_layers,
                (long long)c.decoder_layers);
    std::printf("  d_model       %lld\n", (long long)c.d_model);
    std::printf("  attention     %lld heads x %lld kv_channels = %lld\n", (long long)c.num_heads,
                (long long)c.kv_channels, (long long)c.attention_width());
    std::printf("  family        %s (model_type %s)\n", openba::model_family_name(c.family), c.model_type.c_str());
    if (t5) {
      std::printf("  ffn           %lld (%s%s)\n", (long long)c.ffn_hidden, c.ffn_gated ? "gated " : "",
                  openba::ffn_activation_name(c.ffn_activation));
      std::printf("  positions     relative bias, %lld buckets, max distance %lld\n",
                  (long long)c.relative_attention_num_buckets, (long long)c.relative_attention_max_distance);
    } else {
      std::printf("  ffn           %lld (SwiGLU, fc_in %lld rows)\n", (long long)c.ffn_hidden,
                  (long long)(2 * c.ffn_hidden));
    }
    std::printf("  vocab rows    %lld\n", (long long)c.vocab_size);
    std::printf("  max length    %lld encoder / %lld decoder\n", (long long)c.max_seq_length,
                (long long)c.decoder_max_seq_length);
    std::printf("  biases        qkv/o %s, ffn %s, lm_head %s\n", c.add_qkv_bias ? "yes" : "no",
                c.add_ffn_bias ? "yes" : "no", c.add_lm_head_bias ? "yes" : "no");
    std::printf("  lm_head       %s%s\n", tie_text.c_str(),
                c.tie_word_embeddings ? "; tie_word_embeddings: output scaled by d_model^-0.5" : "");
    std::printf("parameters%s\n", tied ? " (tied lm_head.weight counted once)" : "");
    for (int i = 0; i < openba::kComponentCount; ++i) {
      const int64_t n = params.by_component[i];
      std::printf("  %-25s %12lld  %8s  %5.1f%%\n", openba::component_name(static_cast<openba::Component>(i)),
                  (long long)n, openba::human_count(n).c_str(), 100.0 * n / params.total);
    }
    std::printf("  %-25s %12lld  %8s\n", "total", (long long)params.total,
                openba::human_count(params.total).c_str());
    std::printf("dtypes\n");
    for (const auto& [name, usage] : dtypes) {
      std::printf("  %-6s %5lld tensors  %s\n", name.c_str(), (long long)usage.tensors,
                  openba::human_bytes(usage.bytes).c_str());
    }
    std::printf("shards\n");
    for (const auto& s : ck.shards()) {
      std::printf("  %-40s %12s  %zu tensors\n", std::filesystem::path(s.path).filename().c_str(),
                  openba::human_bytes(s.bytes).c_str(), s.tensor_names.size());
    }
    std::printf("tokenizer files\n");
    if (tokenizer.empty()) std::printf("  (none)\n");
    for (const auto& f : tokenizer) std::printf("  %s\n", std::filesystem::path(f).filename().c_str());
    return 0;
  });
}

// openba-pretrain: continual pretraining of an OpenBA checkpoint on token
// shards with UL2 objectives (configs/train/*.yaml; any key overridable with
// --set). --preview N shows what the model would be fed, without training.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "tools/cli_common.h"
#include "tools/torch_tool.h"
#include "train/gradient_sync.h"
#include "train/train_config.h"
#include "train/trainer.h"
#include "util/config_node.h"
#include "util/error.h"

int main(int argc, char** argv) {
  return openba::run_torch_tool("openba-pretrain", [&] {
    CLI::App app{"Continual pretraining with UL2 objectives."};
    std::string config_path, out_dir;
    std::vector<std::string> overrides;
    int64_t preview = 0;
    bool resume = false, quiet = false;
    app.add_option("--config", config_path, "training config YAML (configs/train/*.yaml)")->required();
    app.add_option("--set", overrides, "override a config key: --set trainer.steps=20 (repeatable)");
    app.add_option("--out", out_dir, "run directory: checkpoints, metrics, logs, final model");
    app.add_flag("--resume", resume, "continue from the newest complete checkpoint in --out");
    app.add_option("--preview", preview, "write N examples as JSONL (to OUT/preview.jsonl, or stdout) and exit");
    app.add_flag("--quiet", quiet, "no progress line");
    openba::parse_command_line(app, argc, argv);

    const openba::ConfigNode root = openba::ConfigNode::load(config_path, overrides);
    const openba::TrainConfig config = openba::read_train_config(root);
    if (preview > 0) {
      std::string path = "-";
      if (!out_dir.empty()) {
        std::filesystem::create_directories(out_dir);
        path = (std::filesystem::path(out_dir) / "preview.jsonl").string();
      }
      openba::write_preview(config, preview, path);
      if (path != "-") std::printf("wrote %lld examples to %s\n", static_cast<long long>(preview), path.c_str());
      return 0;
    }
    if (out_dir.empty()) throw openba::Error("--out: a run directory is required for training");
    openba::TrainerRun run;
    run.out_dir = out_dir;
    run.resume = resume;
    run.effective_config = root.dump();
    run.quiet = quiet;
    openba::LocalSync sync;
    const std::string final_dir = openba::run_training(config, run, sync);
    std::printf("%s\n", final_dir.c_str());
    return 0;
  });
}

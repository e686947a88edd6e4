// openba-pretrain: continual pretraining of an OpenBA checkpoint on token
// shards with UL2 objectives (configs/train/*.yaml; any key overridable with
// --set). --preview N shows what the model would be fed, without training.
//
// Distributed: launched by torchrun (--no-python) or srun, every process is a
// rank (dist/launch_env.h); `--nproc N` starts N local ranks itself.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <chrono>

#include "dist/c10d_sync.h"
#include "dist/communicator.h"
#include "dist/launch_env.h"
#include "dist/local_launcher.h"
#include "tools/cli_common.h"
#include "tools/torch_tool.h"
#include "train/gradient_sync.h"
#include "train/train_config.h"
#include "train/trainer.h"
#include "util/config_node.h"
#include "util/error.h"

namespace {

// argv without "--nproc N" / "--nproc=N": what each local worker runs.
std::vector<std::string> worker_arguments(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--nproc") {
      ++i;
      continue;
    }
    if (a.rfind("--nproc=", 0) == 0) continue;
    args.push_back(a);
  }
  return args;
}

// A rank that fails tells the others why, then leaves without running c10d's
// destructors (they could wait on collectives a dead peer never joins).
[[noreturn]] void exit_rank(openba::C10dSync& sync, const std::string& message) {
  sync.communicator().announce_failure(message);
  // Rank 0 hosts the store the others read heartbeats from while they
  // diagnose the same failure: stay a few seconds so they can name the
  // missing rank instead of blaming rank 0.
  if (sync.rank() == 0) std::this_thread::sleep_for(std::chrono::seconds(6));
  std::fprintf(stderr, "openba-pretrain: error: %s\n", message.c_str());
  std::fflush(stderr);
  std::fflush(stdout);
  std::_Exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  return openba::run_torch_tool("openba-pretrain", [&] {
    CLI::App app{"Continual pretraining with UL2 objectives."};
    std::string config_path, out_dir;
    std::vector<std::string> overrides;
    int64_t preview = 0;
    int nproc = 0;
    bool resume = false, quiet = false;
    app.add_option("--config", config_path, "training config YAML (configs/train/*.yaml)")->required();
    app.add_option("--set", overrides, "override a config key: --set trainer.steps=20 (repeatable)");
    app.add_option("--out", out_dir, "run directory: checkpoints, metrics, logs, final model");
    app.add_flag("--resume", resume, "continue from the newest complete checkpoint in --out");
    app.add_option("--preview", preview, "write N examples as JSONL (to OUT/preview.jsonl, or stdout) and exit");
    app.add_flag("--quiet", quiet, "no progress line");
    app.add_option("--nproc", nproc, "start N local ranks (data parallel on this machine)");
    openba::parse_command_line(app, argc, argv);

    const openba::LaunchEnv env = openba::read_launch_env();
    const openba::ConfigNode root = openba::ConfigNode::load(config_path, overrides);
    const openba::TrainConfig config = openba::read_train_config(root);
    if (app.count("--nproc")) {
      if (env.launcher != "none") {
        throw openba::Error("--nproc: this process was already launched as rank " + std::to_string(env.rank) +
                            " of " + std::to_string(env.world_size) + " (by " + env.launcher +
                            "); drop --nproc or launch it directly");
      }
      if (preview > 0) throw openba::Error("--nproc: --preview runs in one process");
      if (nproc < 1) throw openba::Error("--nproc " + std::to_string(nproc) + ": must be at least 1");
      (void)config.accumulation_steps(nproc);  // a batch that does not split is an error before any rank starts
      openba::LocalLaunch launch;
      launch.nproc = nproc;
      launch.args = worker_arguments(argc, argv);
      launch.grace_seconds = config.comm_timeout_s + 10;  // their own timeout plus the diagnosis
      return openba::launch_local_workers(launch);
    }
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
    if (!env.distributed()) {
      openba::LocalSync sync;
      std::printf("%s\n", openba::run_training(config, run, sync).final_dir.c_str());
      return 0;
    }
    openba::CommOptions comm;
    comm.backend = config.backend;
    comm.timeout_s = config.comm_timeout_s;
    comm.device = config.device;
    // A rank's collective buffers live on its own GPU (the trainer's choice too).
    if (comm.device == "cuda") comm.device = "cuda:" + std::to_string(env.local_rank);
    openba::DataParallelOptions dp;
    dp.zero = static_cast<int>(config.zero);
    dp.bucket_mb = config.bucket_mb;
    dp.overlap = config.overlap_comm;
    openba::C10dSync sync(openba::Communicator::connect(env, comm), env.local_rank, dp);
    std::string final_dir;
    try {
      final_dir = openba::run_training(config, run, sync).final_dir;
    } catch (const c10::Error& e) {
      exit_rank(sync, e.what_without_backtrace());
    } catch (const std::exception& e) {
      exit_rank(sync, e.what());
    }
    if (env.rank == 0) std::printf("%s\n", final_dir.c_str());
    return 0;
  });
}

#include "dist/launch_env.h"

#include <cstdlib>

#include "util/error.h"

namespace openba {
namespace {

int parse_int(const char* name, const char* value, int min, int max) {
  const std::string text(value);
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < min || v > max) {
    throw Error("environment variable " + std::string(name) + "='" + text + "': expected an integer in [" +
                std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return static_cast<int>(v);
}

// SLURM_NTASKS_PER_NODE looks like "4" or "4(x2)" or "4(x2),3": the count of this
// node is not knowable from it alone when nodes differ, so take the first.
int slurm_tasks_per_node(const char* value, int fallback) {
  if (!value) return fallback;
  std::string text(value);
  const size_t cut = text.find_first_of("(,");
  if (cut != std::string::npos) text = text.substr(0, cut);
  return parse_int("SLURM_NTASKS_PER_NODE", text.c_str(), 1, 1 << 20);
}

}  // namespace

LaunchEnv read_launch_env(const std::function<const char*(const char*)>& get) {
  LaunchEnv env;
  const int max_ranks = 1 << 20;
  if (get("RANK") || get("WORLD_SIZE")) {
    if (!get("RANK") || !get("WORLD_SIZE")) {
      throw Error(std::string("environment: ") + (get("RANK") ? "RANK" : "WORLD_SIZE") + " is set but " +
                  (get("RANK") ? "WORLD_SIZE" : "RANK") + " is not (launch with torchrun, srun or --nproc)");
    }
    env.launcher = "torchrun";
    env.world_size = parse_int("WORLD_SIZE", get("WORLD_SIZE"), 1, max_ranks);
    env.rank = parse_int("RANK", get("RANK"), 0, env.world_size - 1);
    env.local_rank = get("LOCAL_RANK") ? parse_int("LOCAL_RANK", get("LOCAL_RANK"), 0, max_ranks) : env.rank;
    env.local_world_size = get("LOCAL_WORLD_SIZE")
                               ? parse_int("LOCAL_WORLD_SIZE", get("LOCAL_WORLD_SIZE"), 1, max_ranks)
                               : env.world_size;
    const char* agent = get("TORCHELASTIC_USE_AGENT_STORE");
    env.agent_hosts_store = agent && std::string(agent) == "True";
    if (const char* id = get("TORCHELASTIC_RUN_ID")) env.store_prefix += std::string("/") + id;
    if (const char* restart = get("TORCHELASTIC_RESTART_COUNT")) env.store_prefix += std::string("/") + restart;
  } else if (get("SLURM_PROCID") && get("SLURM_NTASKS")) {
    env.launcher = "slurm";
    env.world_size = parse_int("SLURM_NTASKS", get("SLURM_NTASKS"), 1, max_ranks);
    env.rank = parse_int("SLURM_PROCID", get("SLURM_PROCID"), 0, env.world_size - 1);
    env.local_rank = get("SLURM_LOCALID") ? parse_int("SLURM_LOCALID", get("SLURM_LOCALID"), 0, max_ranks) : 0;
    env.local_world_size = slurm_tasks_per_node(get("SLURM_NTASKS_PER_NODE"), 1);
    if (const char* job = get("SLURM_JOB_ID")) env.store_prefix += std::string("/") + job;
    if (!get("MASTER_ADDR")) {
      const char* node = get("SLURM_LAUNCH_NODE_IPADDR");
      if (!node) {
        throw Error("environment: under Slurm set MASTER_ADDR to the first node's address "
                    "(e.g. export MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1))");
      }
      env.master_addr = node;
    }
  } else {
    return env;
  }
  if (env.local_rank >= env.local_world_size) {
    throw Error("environment: LOCAL_RANK " + std::to_string(env.local_rank) + " is not below LOCAL_WORLD_SIZE " +
                std::to_string(env.local_world_size));
  }
  if (const char* addr = get("MASTER_ADDR")) {
    if (!*addr) throw Error("environment variable MASTER_ADDR is empty");
    env.master_addr = addr;
  } else if (env.launcher == "torchrun" && env.world_size > 1) {
    throw Error("environment: RANK/WORLD_SIZE are set but MASTER_ADDR is not");
  }
  if (const char* port = get("MASTER_PORT")) env.master_port = parse_int("MASTER_PORT", port, 1, 65535);
  return env;
}

LaunchEnv read_launch_env() {
  return read_launch_env([](const char* name) { return std::getenv(name); });
}

}  // namespace openba

// Where this process sits in a distributed run, read from the environment
// the way PyTorch jobs are launched:
//   torchrun / our --nproc: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
//                           MASTER_ADDR, MASTER_PORT (TORCHELASTIC_* when the
//                           torchrun agent already hosts the store)
//   srun (Slurm):           SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID,
//                           SLURM_NTASKS_PER_NODE; MASTER_ADDR (or the launch
//                           node's address) and MASTER_PORT
// With none of them set, the process is a single rank (world size 1).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace openba {

struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // torchrun's agent hosts a TCPStore at MASTER_ADDR:MASTER_PORT: every
  // worker connects as a client (rank 0 must not start a second server).
  bool agent_hosts_store = false;
  std::string store_prefix = "openba";  // keys of this run (and restart) in a shared store
  std::string launcher = "none";        // "torchrun", "slurm", "none"

  bool distributed() const { return world_size > 1 || launcher != "none"; }
};

// Reads the variables through `get` (nullptr = unset); Error naming the
// variable when one is malformed or inconsistent (RANK >= WORLD_SIZE, ...).
LaunchEnv read_launch_env(const std::function<const char*(const char*)>& get);
LaunchEnv read_launch_env();  // from the process environment

}  // namespace openba

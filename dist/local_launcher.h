// `openba-pretrain --nproc N`: starts N workers of the same binary on this
// machine with the torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, a free MASTER_PORT), forwards
// SIGINT/SIGTERM to them, and waits. When a worker fails, the others get
// `grace_seconds` to notice and exit on their own (they name the missing rank),
// then are terminated. Torch-free.
#pragma once

#include <string>
#include <vector>

namespace openba {

struct LocalLaunch {
  int nproc = 1;
  std::vector<std::string> args;  // the workers' arguments (without --nproc), argv[0] first
  double grace_seconds = 60;
  std::string tool = "openba-pretrain";  // for messages
};

// Returns the exit status for the launcher: 0 when every worker succeeded,
// else the first failed worker's status (128 + signal when one was killed).
int launch_local_workers(const LocalLaunch& launch);

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_local_port();

}  // namespace openba

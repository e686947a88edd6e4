// The process group of a distributed run: LibTorch's c10d with a TCPStore
// rendezvous and the Gloo (CPU) or NCCL (CUDA) backend. Every collective that
// fails (a peer died: "connection closed"; a peer stopped answering: the
// backend's timeout) is turned into a DistributedFailure naming the missing
// rank, from heartbeats every rank writes to the store once a second.
// c10d's headers stay in communicator.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "dist/launch_env.h"
#include "util/error.h"

namespace openba {

struct CommOptions {
  std::string backend = "auto";  // auto (NCCL for CUDA, Gloo for CPU), gloo, nccl
  double timeout_s = 300;        // a collective waiting longer than this fails
  std::string device = "cpu";    // where collective buffers live
};

// A collective failed; what() names the missing rank(s). The process should
// exit non-zero (tools exit without running c10d's destructors, which could
// wait on the dead peer).
class DistributedFailure : public Error {
 public:
  using Error::Error;
};

// An asynchronous collective in flight.
class PendingOp {
 public:
  virtual ~PendingOp() = default;
  // Blocks until done; DistributedFailure when it failed.
  virtual void wait() = 0;
  // Seconds (steady clock, see comm_clock_seconds) when the backend finished
  // it; valid after wait().
  virtual double finished_at() const = 0;
};

double comm_clock_seconds();

class Communicator {
 public:
  static std::unique_ptr<Communicator> connect(const LaunchEnv& env, const CommOptions& options);
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string backend() const = 0;

  // In place: every rank ends with the element-wise sum.
  virtual std::unique_ptr<PendingOp> all_reduce_sum(torch::Tensor flat) = 0;
  // flat holds world_size equal chunks; rank r ends with the sum of chunk r in
  // `mine` (flat's contents are undefined afterwards).
  virtual std::unique_ptr<PendingOp> reduce_scatter_sum(torch::Tensor flat, torch::Tensor mine) = 0;
  // flat receives every rank's `mine`, rank r's at chunk r.
  virtual std::unique_ptr<PendingOp> all_gather(torch::Tensor flat, torch::Tensor mine) = 0;

  virtual void all_reduce_sum(std::vector<double>& values) = 0;
  virtual void barrier(const std::string& what) = 0;
  // Rank 0's `value` on every rank.
  virtual std::string broadcast_string(const std::string& key, const std::string& value) = 0;
  // Error on every rank when `value` differs between ranks, naming them.
  virtual void require_same(const std::string& what, const std::string& value) = 0;

  // What the heartbeat reports (and failures are measured against).
  virtual void set_step(int64_t step) = 0;
  // Best effort: tells the other ranks why this one is about to exit.
  virtual void announce_failure(const std::string& message) = 0;
};

}  // namespace openba

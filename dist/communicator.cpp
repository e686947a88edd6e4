#include "dist/communicator.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <c10/util/Logging.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <thread>

namespace openba {
namespace {

constexpr double kHeartbeatSeconds = 1.0;
constexpr double kStaleSeconds = 3.5;  // a heartbeat older than this: the rank is gone or frozen

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string text_of(const std::vector<uint8_t>& bytes) { return std::string(bytes.begin(), bytes.end()); }
std::vector<uint8_t> bytes_of(const std::string& text) { return std::vector<uint8_t>(text.begin(), text.end()); }

std::string first_line(const std::string& text) {
  const size_t cut = text.find('\n');
  return cut == std::string::npos ? text : text.substr(0, cut);
}

class CommunicatorImpl;

class WorkOp final : public PendingOp {
 public:
  WorkOp(CommunicatorImpl* comm, std::string what, std::vector<c10::intrusive_ptr<c10d::Work>> works,
         std::function<void()> after)
      : comm_(comm), what_(std::move(what)), works_(std::move(works)), after_(std::move(after)),
        done_(std::make_shared<std::atomic<double>>(0.0)) {
    for (auto& w : works_) {
      try {
        auto done = done_;
        w->getFuture()->addCallback([done](c10::ivalue::Future&) {
          const double now = comm_clock_seconds();
          double prev = done->load();
          while (now > prev && !done->compare_exchange_weak(prev, now)) {
          }
        });
      } catch (const std::exception&) {
        // A backend without futures: finished_at falls back to the wait.
      }
    }
  }
  void wait() override;
  double finished_at() const override { return done_->load(); }

 private:
  CommunicatorImpl* comm_;
  std::string what_;
  std::vector<c10::intrusive_ptr<c10d::Work>> works_;
  std::function<void()> after_;
  std::shared_ptr<std::atomic<double>> done_;
};

class CommunicatorImpl final : public Communicator {
 public:
  CommunicatorImpl(const LaunchEnv& env, const CommOptions& options) : env_(env), options_(options) {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000));
    backend_ = options.backend;
    if (backend_ == "auto") backend_ = torch::Device(options.device).is_cuda() ? "nccl" : "gloo";
    if (backend_ != "gloo" && backend_ != "nccl") {
      throw Error("distributed.backend: '" + backend_ + "' is not one of auto, gloo, nccl");
    }
    device_ = torch::Device(backend_ == "nccl" ? options.device : "cpu");
    if (backend_ == "nccl" && !device_.is_cuda()) {
      throw Error("distributed.backend nccl: NCCL's collectives run on GPU tensors, but trainer.device is " +
                  options.device + " (use backend gloo or auto on CPU)");
    }
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    so.isServer = env.rank == 0 && !env.agent_hosts_store;
    so.numWorkers = env.agent_hosts_store ? c10::nullopt : c10::optional<size_t>(env.world_size);
    so.waitWorkers = false;
    so.timeout = timeout;
    const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
    try {
      raw_store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
      so.isServer = false;
      so.numWorkers = c10::nullopt;
      heartbeat_raw_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    } catch (const std::exception& e) {
      throw Error("rank " + std::to_string(env.rank) + ": could not " +
                  (env.rank == 0 && !env.agent_hosts_store ? "start" : "reach") + " the rendezvous store at " + where +
                  " within " + std::to_string(static_cast<int>(options.timeout_s)) + " s (MASTER_ADDR/MASTER_PORT): " +
                  first_line(e.what()));
    }
    store_ = c10::make_intrusive<c10d::PrefixStore>(env.store_prefix + "/", raw_store_);
    heartbeat_store_ = c10::make_intrusive<c10d::PrefixStore>(env.store_prefix + "/", heartbeat_raw_);
    heartbeat_raw_->setTimeout(std::chrono::seconds(5));
    beat();  // present from the start: a rank that never arrives is told apart from one that left
    heartbeat_ = std::thread([this] { heartbeat_loop(); });
    try {
      if (backend_ == "gloo") {
        auto go = c10d::ProcessGroupGloo::Options::create(timeout);
        const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
        if (ifname && *ifname) {
          go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
        } else if (env.local_world_size == env.world_size &&
                   (env.master_addr == "127.0.0.1" || env.master_addr == "localhost")) {
          go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        } else {
          go->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        }
        pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(
            c10::make_intrusive<c10d::PrefixStore>("gloo/", store_), env.rank, env.world_size, go);
      } else {
#ifdef USE_C10D_NCCL
        auto no = c10d::ProcessGroupNCCL::Options::create();
        no->timeout = timeout;
        pg_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl/", store_),
                                                          env.rank, env.world_size, no);
        // Binding the rank's GPU lets NCCL connect once, for that device
        // (barriers would otherwise guess one).
        if (device_.has_index()) pg_->setBoundDeviceId(device_);
#else
        throw Error("distributed.backend nccl: this build has no NCCL (it was built against a LibTorch without "
                    "CUDA); use distributed.backend: gloo");
#endif
      }
    } catch (const Error&) {
      stop_heartbeat();  // a joinable thread member would std::terminate the unwinding
      throw;
    } catch (const std::exception& e) {
      stop_heartbeat();
      fail("connecting the " + backend_ + " process group", e.what());
    }
  }

  ~CommunicatorImpl() override {
    stop_heartbeat();
    if (failed_) {
      // A peer is gone: c10d's destructors would wait for collectives that
      // can never finish. The process is about to exit; leave them be.
      (void)pg_.release();
      (void)store_.release();
      (void)raw_store_.release();
      (void)heartbeat_store_.release();
      (void)heartbeat_raw_.release();
    }
  }

  void stop_heartbeat() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    if (heartbeat_.joinable()) heartbeat_.join();
  }

  int rank() const override { return env_.rank; }
  int world_size() const override { return env_.world_size; }
  std::string backend() const override { return backend_; }

  std::unique_ptr<PendingOp> all_reduce_sum(torch::Tensor flat) override {
    std::vector<at::Tensor> tensors{flat};
    return launch("all-reduce", [&] { return std::vector<c10::intrusive_ptr<c10d::Work>>{pg_->allreduce(tensors)}; },
                  nullptr);
  }

  std::unique_ptr<PendingOp> reduce_scatter_sum(torch::Tensor flat, torch::Tensor mine) override {
    const int64_t chunk = mine.numel();
    check_chunks(flat, chunk, "reduce-scatter");
    return launch("reduce-scatter",
                  [&] { return std::vector<c10::intrusive_ptr<c10d::Work>>{pg_->_reduce_scatter_base(mine, flat)}; },
                  nullptr);
  }

  std::unique_ptr<PendingOp> all_gather(torch::Tensor flat, torch::Tensor mine) override {
    const int64_t chunk = mine.numel();
    check_chunks(flat, chunk, "all-gather");
    return launch("all-gather",
                  [&] { return std::vector<c10::intrusive_ptr<c10d::Work>>{pg_->_allgather_base(flat, mine)}; },
                  nullptr);
  }

  void all_reduce_sum(std::vector<double>& values) override {
    if (values.empty()) return;
    torch::Tensor t = torch::tensor(values, torch::kDouble).to(device_);
    all_reduce_sum(t)->wait();
    t = t.cpu();
    for (size_t i = 0; i < values.size(); ++i) values[i] = t[static_cast<int64_t>(i)].item<double>();
  }

  void barrier(const std::string& what) override {
    launch(what, [&] { return std::vector<c10::intrusive_ptr<c10d::Work>>{pg_->barrier()}; }, nullptr)->wait();
  }

  std::string broadcast_string(const std::string& key, const std::string& value) override {
    const std::string k = "bcast/" + key;
    try {
      if (env_.rank == 0) {
        store_->set(k, bytes_of(value));
        return value;
      }
      return text_of(store_->get(k));
    } catch (const std::exception& e) {
      fail("waiting for rank 0's " + key, e.what());
    }
  }

  void require_same(const std::string& what, const std::string& value) override {
    const std::string key = "same/" + what;
    std::string reference;
    try {
      if (env_.rank == 0) store_->set(key, bytes_of(value));
      reference = text_of(store_->get(key));
    } catch (const std::exception& e) {
      fail("comparing " + what + " with rank 0", e.what());
    }
    std::vector<double> differs(static_cast<size_t>(env_.world_size), 0.0);
    differs[static_cast<size_t>(env_.rank)] = reference == value ? 0.0 : 1.0;
    all_reduce_sum(differs);
    std::string ranks;
    for (int r = 0; r < env_.world_size; ++r) {
      if (differs[static_cast<size_t>(r)] != 0) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
    }
    if (!ranks.empty()) {
      throw Error(what + " differs between ranks: rank(s) " + ranks + " disagree with rank 0 (" +
                  (reference == value ? "this rank agrees" : "this rank has " + value + ", rank 0 has " + reference) +
                  "); every rank must run the same configuration");
    }
  }

  void set_step(int64_t step) override { step_.store(step); }

  void announce_failure(const std::string& message) override {
    try {
      std::lock_guard<std::mutex> lock(store_mutex_);
      heartbeat_store_->set("failed/" + std::to_string(env_.rank), bytes_of(first_line(message)));
      // The first failure also goes under one key every rank's heartbeat
      // polls: a rank still blocked when rank 0 exits (taking the store with
      // it) can then repeat what rank 0 found instead of blaming rank 0.
      if (heartbeat_store_->add("failed/count", 1) == 1) {
        heartbeat_store_->set("failed/first", bytes_of(first_line(message)));
      }
    } catch (const std::exception&) {
    }
  }

  [[noreturn]] void fail(const std::string& what, const std::string& cause) {
    failed_ = true;
    quiet_c10d_warnings();
    throw DistributedFailure("rank " + std::to_string(env_.rank) + ": " + what + " failed at step " +
                             std::to_string(step_.load()) + ": " + diagnose() + " [" + backend_ + ": " +
                             first_line(cause) + "]");
  }

 private:
  template <typename Launch>
  std::unique_ptr<PendingOp> launch(const std::string& what, Launch&& start, std::function<void()> after) {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    try {
      works = start();
    } catch (const std::exception& e) {
      fail(what, e.what());
    }
    return std::make_unique<WorkOp>(this, what, std::move(works), std::move(after));
  }

  void check_chunks(const torch::Tensor& flat, int64_t chunk, const char* what) const {
    if (flat.numel() != chunk * env_.world_size) {
      throw Error(std::string(what) + ": buffer of " + std::to_string(flat.numel()) + " elements is not " +
                  std::to_string(env_.world_size) + " chunks of " + std::to_string(chunk));
    }
  }

  void beat() {
    std::lock_guard<std::mutex> lock(store_mutex_);
    heartbeat_store_->set("hb/" + std::to_string(env_.rank),
                          bytes_of(std::to_string(unix_ms()) + " " + std::to_string(step_.load())));
  }

  void heartbeat_loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
      wake_.wait_for(lock, std::chrono::milliseconds(static_cast<int64_t>(kHeartbeatSeconds * 1000)));
      // Keeps beating after a failure too: the other ranks are diagnosing
      // at the same moment and must not take this rank for the dead one.
      if (stop_) break;
      lock.unlock();
      try {
        beat();
        remember_first_failure();
      } catch (const std::exception&) {
        lock.lock();
        break;  // the store is gone: the next collective will say so
      }
      lock.lock();
    }
  }

  void remember_first_failure() {
    {
      std::lock_guard<std::mutex> lock(note_mutex_);
      if (!first_failure_.empty()) return;
    }
    std::string note;
    {
      std::lock_guard<std::mutex> lock(store_mutex_);
      if (!heartbeat_store_->check({"failed/first"})) return;
      note = text_of(heartbeat_store_->get("failed/first"));
    }
    quiet_c10d_warnings();
    std::lock_guard<std::mutex> lock(note_mutex_);
    first_failure_ = note;
  }

  // Once a failure is known, c10d's own warnings about the store going away
  // (each with a backtrace, in 2.x) only repeat what our diagnosis says.
  static void quiet_c10d_warnings() { FLAGS_caffe2_log_level = std::max(FLAGS_caffe2_log_level, 2); }

  // Which ranks are missing, from their heartbeats and failure notes. A rank
  // killed a moment ago still has a fresh heartbeat: look again for a few
  // seconds until it goes stale.
  std::string diagnose() {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::duration<double>(kStaleSeconds + 1.5);
    std::string found;
    while (true) {
      found.clear();
      try {
        std::lock_guard<std::mutex> lock(store_mutex_);
        for (int r = 0; r < env_.world_size; ++r) {
          if (r == env_.rank) continue;
          const std::string failed_key = "failed/" + std::to_string(r);
          if (heartbeat_store_->check({failed_key})) {
            found += "rank " + std::to_string(r) + " failed (" + text_of(heartbeat_store_->get(failed_key)) + "); ";
            continue;
          }
          const std::string hb_key = "hb/" + std::to_string(r);
          if (!heartbeat_store_->check({hb_key})) {
            found += "rank " + std::to_string(r) + " never joined; ";
            continue;
          }
          std::istringstream in(text_of(heartbeat_store_->get(hb_key)));
          int64_t ms = 0, step = 0;
          in >> ms >> step;
          const double age = static_cast<double>(unix_ms() - ms) / 1000.0;
          if (age > kStaleSeconds) {
            char line[200];
            std::snprintf(line, sizeof(line),
                          "rank %d died or stopped answering (last heartbeat %.1f s ago, at step %lld); ", r, age,
                          static_cast<long long>(step));
            found += line;
          }
        }
      } catch (const std::exception&) {
        std::string earlier;
        {
          std::lock_guard<std::mutex> lock(note_mutex_);
          earlier = first_failure_;
        }
        if (!earlier.empty()) return "the store is gone, after a failure reported earlier: " + earlier;
        return env_.agent_hosts_store
                   ? "the rendezvous store (torchrun's agent at " + env_.master_addr + ":" +
                         std::to_string(env_.master_port) + ") is unreachable"
                   : "rank 0 died or stopped answering (the rendezvous store it hosts at " + env_.master_addr + ":" +
                         std::to_string(env_.master_port) + " is unreachable)";
      }
      if (!found.empty()) return found.substr(0, found.size() - 2);
      if (std::chrono::steady_clock::now() > give_up) return "no other rank could be named as missing";
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }

  LaunchEnv env_;
  CommOptions options_;
  std::string backend_;
  torch::Device device_ = torch::kCPU;
  c10::intrusive_ptr<c10d::Store> raw_store_, store_, heartbeat_raw_, heartbeat_store_;
  c10::intrusive_ptr<c10d::Backend> pg_;
  std::atomic<int64_t> step_{0};
  std::atomic<bool> failed_{false};
  std::mutex mutex_, store_mutex_, note_mutex_;
  std::string first_failure_;  // the first rank's failure note, seen by the heartbeat (guarded by note_mutex_)
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread heartbeat_;
};

void WorkOp::wait() {
  for (auto& w : works_) {
    try {
      w->wait();
    } catch (const std::exception& e) {
      comm_->fail(what_, e.what());
    }
  }
  if (after_) after_();
  if (done_->load() == 0.0) done_->store(comm_clock_seconds());
}

}  // namespace

double comm_clock_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::unique_ptr<Communicator> Communicator::connect(const LaunchEnv& env, const CommOptions& options) {
  return std::make_unique<CommunicatorImpl>(env, options);
}

}  // namespace openba

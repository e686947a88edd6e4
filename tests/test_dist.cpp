// The launch environment (torchrun, Slurm, none) and optimizer state that any
// world size can read back (pieces of sharded runs, whole tensors).
#include "tests/torch_test.h"

#include <filesystem>
#include <map>

#include "dist/launch_env.h"
#include "runtime/safetensors_io.h"
#include "train/adamw.h"
#include "train/optimizer_state.h"
#include "tests/test_util.h"

namespace {

openba::LaunchEnv env_of(std::map<std::string, std::string> vars) {
  return openba::read_launch_env([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

}  // namespace

TEST_CASE("launch env: none, torchrun, slurm, and bad values", "[dist]") {
  const auto none = env_of({});
  CHECK_FALSE(none.distributed());
  CHECK(none.world_size == 1);

  const auto tr = env_of({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                          {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "29400"},
                          {"TORCHELASTIC_USE_AGENT_STORE", "True"}, {"TORCHELASTIC_RESTART_COUNT", "2"},
                          {"TORCHELASTIC_RUN_ID", "job"}});
  CHECK(tr.distributed());
  CHECK(tr.rank == 3);
  CHECK(tr.world_size == 8);
  CHECK(tr.local_rank == 1);
  CHECK(tr.local_world_size == 2);
  CHECK(tr.master_addr == "10.0.0.1");
  CHECK(tr.master_port == 29400);
  CHECK(tr.agent_hosts_store);
  CHECK(tr.store_prefix == "openba/job/2");  // a restarted job never reads the last attempt's keys

  const auto slurm = env_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                             {"SLURM_NTASKS_PER_NODE", "4(x2)"}, {"SLURM_LAUNCH_NODE_IPADDR", "10.1.1.1"}});
  CHECK(slurm.launcher == "slurm");
  CHECK(slurm.rank == 5);
  CHECK(slurm.local_world_size == 4);
  CHECK(slurm.master_addr == "10.1.1.1");
  CHECK(slurm.master_port == 29500);

  CHECK_THROWS_WITH(env_of({{"RANK", "0"}}), Catch::Matchers::Contains("WORLD_SIZE is not"));
  CHECK_THROWS_WITH(env_of({{"RANK", "x"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}}),
                    Catch::Matchers::Contains("RANK='x'"));
  CHECK_THROWS_WITH(env_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}}),
                    Catch::Matchers::Contains("[0, 1]"));
  CHECK_THROWS_WITH(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}}), Catch::Matchers::Contains("MASTER_ADDR"));
  CHECK_THROWS_WITH(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "70000"}}),
                    Catch::Matchers::Contains("MASTER_PORT"));
  CHECK_THROWS_WITH(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}), Catch::Matchers::Contains("MASTER_ADDR"));
}

TEST_CASE("optimizer state: pieces from any number of shard files are re-cut to any range", "[dist]") {
  namespace fs = std::filesystem;
  openba::test::TempDir dir;
  const auto values = torch::arange(10, torch::kFloat);  // a parameter of 10 elements, flattened
  // Two ranks of a run that cut it at 4 (and padded nothing).
  openba::write_safetensors_file((fs::path(dir.path()) / openba::optimizer_shard_file_name(0, 2)).string(),
                                 {{openba::optimizer_piece_key("exp_avg", "w", 0), values.narrow(0, 0, 4)}});
  openba::write_safetensors_file((fs::path(dir.path()) / openba::optimizer_shard_file_name(1, 2)).string(),
                                 {{openba::optimizer_piece_key("exp_avg", "w", 4), values.narrow(0, 4, 6)}});
  const auto reader = openba::OptimizerStateReader::open(dir.path());
  auto dest = torch::empty({5});
  reader.read("exp_avg", "w", 2, 10, dest);  // spans both files
  CHECK(torch::equal(dest, values.narrow(0, 2, 5)));
  auto all = torch::empty({10});
  reader.read("exp_avg", "w", 0, 10, all);
  CHECK(torch::equal(all, values));
  CHECK_THROWS_WITH(reader.read("exp_avg", "w", 0, 12, torch::empty({12})), Catch::Matchers::Contains("holds 10"));
  CHECK_THROWS_WITH(reader.read("exp_avg_sq", "w", 0, 10, all), Catch::Matchers::Contains("no 'exp_avg_sq.w'"));

  // A missing rank's file makes the whole state incomplete.
  fs::remove(fs::path(dir.path()) / openba::optimizer_shard_file_name(1, 2));
  CHECK_THROWS_WITH(openba::OptimizerStateReader::open(dir.path()),
                    Catch::Matchers::Contains("optimizer-rank-00001-of-00002.safetensors is missing"));
}

TEST_CASE("optimizer state: AdamW restores from a sharded layout exactly", "[dist]") {
  openba::test::TempDir dir;
  auto p = torch::randn({3, 4}).requires_grad_();
  openba::AdamW adam({{"w", p, true}}, {});
  p.mutable_grad() = torch::randn({3, 4});
  adam.step(0.01);
  std::map<std::string, torch::Tensor> state;
  for (const auto& [name, t] : adam.state_tensors()) state[name] = t.reshape(-1);
  // Three ranks holding 5 + 5 + 2 elements.
  for (int r = 0; r < 3; ++r) {
    const int64_t lo = 5 * r, n = std::min<int64_t>(5, 12 - lo);
    openba::write_safetensors_file(
        (std::filesystem::path(dir.path()) / openba::optimizer_shard_file_name(r, 3)).string(),
        {{openba::optimizer_piece_key("exp_avg", "w", lo), state["exp_avg.w"].narrow(0, lo, n)},
         {openba::optimizer_piece_key("exp_avg_sq", "w", lo), state["exp_avg_sq.w"].narrow(0, lo, n)}});
  }
  auto q = p.detach().clone().requires_grad_();
  openba::AdamW restored({{"w", q, true}}, {});
  restored.load_state(openba::OptimizerStateReader::open(dir.path()), adam.steps());
  for (const auto& [name, t] : restored.state_tensors()) CHECK(torch::equal(t.reshape(-1), state[name]));
  CHECK(restored.steps() == 1);
}

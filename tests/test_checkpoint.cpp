// Checkpoint directories: lazy opening, round trips, the torch.save
// fixtures, the writer's safety rules, and malformed directories.
#include "arch/openba/openba_model.h"
#include "tests/torch_test.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/checkpoint.h"
#include "runtime/checkpoint_writer.h"
#include "runtime/evaluation.h"
#include "arch/openba/init.h"
#include "arch/openba/layout.h"
#include "runtime/model_io.h"
#include "formats/safetensors.h"
#include "ops/torch_dtype.h"
#include "tests/test_util.h"
#include "util/error.h"
#include "util/resources.h"

using Catch::Matchers::Contains;
using openba::test::TempDir;
namespace fs = std::filesystem;

namespace {

openba::ModelConfig small_config() { return openba::test::small_config(1, 2, 16, 2, 8, 24, 128); }

std::string save_small(const std::string& dir, openba::DType dtype, uint64_t seed = 1,
                       uint64_t shard_bytes = 5'000'000'000ull) {
  openba::OpenBAModel model(small_config());
  openba::initialize_weights(*model, seed);
  openba::WriterOptions options;
  options.max_shard_bytes = shard_bytes;
  return openba::save_model(*model, dir, dtype, options);
}

// The fixture generator's value rule: ((sum of name bytes + 7 i) % 251 - 125) / 64.
torch::Tensor fixture_values(const std::string& name, const std::vector<int64_t>& shape) {
  int64_t h = 0;
  for (unsigned char ch : name) h += ch;
  auto i = torch::arange(0, c10::multiply_integers(shape), torch::kLong);
  return ((h + 7 * i).remainder(251) - 125).to(torch::kFloat).div(64.0).view(shape);
}

}  // namespace

TEST_CASE("checkpoint: save -> load -> save is bit-exact for every dtype", "[checkpoint]") {
  for (auto dtype : {openba::DType::F32, openba::DType::BF16, openba::DType::F16}) {
    TempDir dir;
    const std::string first = save_small(dir / "first", dtype);
    const auto ck = openba::Checkpoint::open(first);
    CHECK(ck.config().dtype == dtype);
    CHECK(ck.format() == "safetensors");
    CHECK(ck.lm_head_storage() == openba::LmHeadStorage::kRecordedTied);
    // Values are the initializer's, rounded to the storage dtype.
    const auto specs = openba::openba_tensor_specs(ck.config());
    for (const auto& spec : specs) {
      auto stored = ck.tensor(spec.name);
      CHECK(stored.scalar_type() == openba::to_scalar_type(dtype));
      CHECK(torch::equal(stored, openba::initial_tensor(spec, ck.config(), 1).to(stored.scalar_type())));
    }
    auto model = openba::load_model(ck);
    CHECK(model->lm_head_tied());
    const std::string second = openba::save_model(*model, dir / "second", dtype, {});
    CHECK(openba::test::read_bytes(first + "/model.safetensors") ==
          openba::test::read_bytes(second + "/model.safetensors"));
  }
}

TEST_CASE("checkpoint: opening does not read the tensors", "[checkpoint]") {
  // A 512 MiB checkpoint whose data section is a hole: opening must not touch it.
  TempDir dir;
  openba::ModelConfig c = small_config();
  c.vocab_size = 65536;
  c.d_model = 1024;
  c.num_heads = 4;
  c.kv_channels = 16;
  const std::string out = dir / "big";
  fs::create_directories(out);
  std::vector<openba::SafetensorsEntry> entries;
  for (const auto& spec : openba::openba_tensor_specs(c)) entries.push_back({spec.name, openba::DType::F32, spec.shape});
  std::vector<uint64_t> offsets;
  const std::string header = openba::build_safetensors_header(entries, {}, &offsets);
  uint64_t data = 0;
  for (const auto& e : entries) data += c10::multiply_integers(e.shape) * 4;
  openba::test::write_bytes(out + "/model.safetensors", header);
  fs::resize_file(out + "/model.safetensors", header.size() + data);
  openba::test::write_bytes(out + "/config.json", openba::to_hf_config_json(c));
  REQUIRE(data > 500ull << 20);

  const uint64_t before = openba::current_rss_bytes();
  const auto ck = openba::Checkpoint::open(out);
  const uint64_t after_open = openba::current_rss_bytes();
  CHECK(after_open - std::min(after_open, before) < (16ull << 20));
  // Reading one tensor does page it in (so the measurement above means something).
  CHECK(ck.tensor("shared_embedding.weight").sum().item<double>() == 0.0);
  CHECK(openba::current_rss_bytes() - after_open > (200ull << 20));
}

TEST_CASE("checkpoint: the torch.save fixture loads with tied storage, strides and offsets", "[checkpoint][bin]") {
  const auto ck = openba::Checkpoint::open(openba::test::source_path("tests/fixtures/tiny-bin"));
  CHECK(ck.format() == "torch");
  CHECK(ck.config().dtype == openba::DType::F16);
  CHECK(ck.lm_head_storage() == openba::LmHeadStorage::kSharedStorage);
  CHECK(ck.shares_storage("shared_embedding.weight", "lm_head.weight"));
  CHECK_FALSE(ck.record("encoder.block.0.self_attn.o.weight").is_contiguous());
  for (const std::string& name : ck.tensor_names()) {
    const std::string source = name == "lm_head.weight" ? "shared_embedding.weight" : name;
    auto t = ck.tensor(name);
    INFO(name);
    CHECK(t.scalar_type() == torch::kHalf);
    CHECK(torch::equal(t.to(torch::kFloat), fixture_values(source, t.sizes().vec())));
  }
  auto model = openba::load_model(ck);
  CHECK(model->lm_head_tied());
  // Same weights through the sharded fp32 fixture.
  const auto sharded = openba::Checkpoint::open(openba::test::source_path("tests/fixtures/tiny-bin-sharded"));
  CHECK(sharded.shards().size() == 2);
  CHECK(sharded.lm_head_storage() == openba::LmHeadStorage::kSeparate);
  CHECK(sharded.lm_head_is_tied());  // separate files, identical values
  for (const std::string& name : sharded.tensor_names()) {
    CHECK(torch::equal(sharded.tensor(name), ck.tensor(name).to(torch::kFloat)));
  }
}

TEST_CASE("checkpoint: .bin and safetensors of the same weights evaluate identically", "[checkpoint][bin]") {
  TempDir dir;
  const auto bin = openba::Checkpoint::open(openba::test::source_path("tests/fixtures/tiny-bin"));
  auto model = openba::load_model(bin);
  const std::string converted = openba::save_model(*model, dir / "st", openba::DType::F16, {});
  auto reloaded = openba::load_model(openba::Checkpoint::open(converted));
  const std::vector<openba::Example> examples = {{{5, 9, 13, 1}, {20, 21, 1}}, {{7, 1}, {30, -100, 31, 1}}};
  const auto& c = bin.config();
  const auto batch = openba::collate({&examples[0], &examples[1]}, c, torch::kCPU);
  const auto a = openba::example_losses(*model, batch);
  const auto b = openba::example_losses(*reloaded, batch);
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].nll_sum == b[i].nll_sum);
}

TEST_CASE("checkpoint writer: shards, index and total size", "[checkpoint][writer]") {
  TempDir dir;
  const std::string out = save_small(dir / "sharded", openba::DType::F32, 1, 8'200);
  const auto ck = openba::Checkpoint::open(out);
  CHECK(ck.shards().size() > 3);
  for (const auto& shard : ck.shards()) {
    // Each shard within the cap unless a single tensor is larger.
    CHECK((shard.bytes <= 8'200 + 4096 || shard.tensor_names.size() == 1));
  }
  auto index = nlohmann::json::parse(openba::test::read_bytes(out + "/model.safetensors.index.json"));
  uint64_t expected = 0;
  for (const auto& spec : openba::openba_tensor_specs(ck.config())) expected += spec.numel() * 4;
  CHECK(index["metadata"]["total_size"].get<uint64_t>() == expected);
  CHECK(index["weight_map"].size() == ck.tensor_names().size());
  CHECK(fs::exists(out + "/model-00001-of-" + std::string(5 - std::to_string(ck.shards().size()).size(), '0') +
                   std::to_string(ck.shards().size()) + ".safetensors"));
  // Loads to the same model as an unsharded save.
  const std::string single = save_small(dir / "single", openba::DType::F32, 1);
  const auto one = openba::Checkpoint::open(single);
  for (const auto& name : one.tensor_names()) CHECK(torch::equal(one.tensor(name), ck.tensor(name)));
}

TEST_CASE("checkpoint writer: never overwrites inputs, never leaves partial output", "[checkpoint][writer]") {
  TempDir dir;
  const std::string input = save_small(dir / "in", openba::DType::F32);
  openba::WriterOptions protect;
  protect.protected_paths = {input};
  CHECK_THROWS_WITH(openba::CheckpointWriter(input, small_config(), protect), Contains("never overwrite an input"));
  CHECK_THROWS_WITH(openba::CheckpointWriter(input + "/sub", small_config(), protect), Contains("inside"));
  protect.overwrite = true;
  CHECK_THROWS_WITH(openba::CheckpointWriter(dir.path(), small_config(), protect), Contains("would delete the input"));
  CHECK_THROWS_WITH(openba::CheckpointWriter(input, small_config(), {}), Contains("already exists"));
  {
    // Abandoned half way: nothing appears at the final path, no staging left behind.
    openba::CheckpointWriter writer(dir / "partial", small_config(), {});
    writer.plan({{"x", {4}}});
    writer.write("x", torch::ones({4}));
  }
  CHECK_FALSE(fs::exists(dir / "partial"));
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);
  }
  openba::CheckpointWriter incomplete(dir / "incomplete", small_config(), {});
  incomplete.plan({{"x", {4}}, {"y", {2}}});
  incomplete.write("x", torch::ones({4}));
  CHECK_THROWS_WITH(incomplete.commit(), Contains("'y'") && Contains("never written"));
  CHECK_THROWS_WITH(incomplete.write("x", torch::ones({4})), Contains("written twice"));
  CHECK_THROWS_WITH(incomplete.write("y", torch::ones({3})), Contains("planned as"));
  CHECK_FALSE(fs::exists(dir / "incomplete"));
  // --force replaces an existing output.
  openba::WriterOptions force;
  force.overwrite = true;
  save_small(dir / "in2", openba::DType::F32, 1);
  CHECK_NOTHROW(openba::save_model(*openba::load_model(openba::Checkpoint::open(input)), dir / "in2",
                                   openba::DType::BF16, force));
  CHECK(openba::Checkpoint::open(dir / "in2").config().dtype == openba::DType::BF16);
}

TEST_CASE("checkpoint: malformed directories are refused with the file and tensor named", "[checkpoint][bad-input]") {
  TempDir dir;
  const std::string good = save_small(dir / "good", openba::DType::F32);
  auto copy = [&](const std::string& name) {
    const std::string target = dir / name;
    fs::copy(good, target, fs::copy_options::recursive);
    return target;
  };
  SECTION("not a directory / no config / no weights") {
    CHECK_THROWS_WITH(openba::Checkpoint::open(dir / "nope"), Contains("not a checkpoint directory"));
    const std::string a = copy("a");
    fs::remove(a + "/config.json");
    CHECK_THROWS_WITH(openba::Checkpoint::open(a), Contains("missing config.json"));
    const std::string b = copy("b");
    fs::remove(b + "/model.safetensors");
    CHECK_THROWS_WITH(openba::Checkpoint::open(b), Contains("no weights found"));
  }
  SECTION("truncated weights file") {
    const std::string t = copy("t");
    fs::resize_file(t + "/model.safetensors", fs::file_size(t + "/model.safetensors") - 100);
    CHECK_THROWS_WITH(openba::Checkpoint::open(t), Contains("model.safetensors") && Contains("out of range"));
  }
  SECTION("shape mismatch against the config") {
    const std::string s = copy("s");
    auto c = small_config();
    c.num_heads = 1;  // qkv would be [24, 16]
    c.kv_channels = 8;
    openba::test::write_bytes(s + "/config.json", openba::to_hf_config_json(c));
    CHECK_THROWS_WITH(openba::Checkpoint::open(s), Contains("self_attn.qkv.weight") && Contains("[48, 16]") &&
                                                       Contains("[24, 16]"));
  }
  SECTION("vocabulary mismatch") {
    const std::string v = copy("v");
    auto c = small_config();
    c.vocab_size = 256;
    openba::test::write_bytes(v + "/config.json", openba::to_hf_config_json(c));
    CHECK_THROWS_WITH(openba::Checkpoint::open(v), Contains("256") && Contains("128 rows"));
  }
  SECTION("missing and unexpected tensors") {
    openba::CheckpointWriter missing(dir / "missing", small_config(), {});
    std::vector<openba::PlannedTensor> plan;
    for (const auto& spec : openba::openba_tensor_specs(small_config())) {
      if (spec.name != "decoder.block.1.inter_attn.kv.bias") plan.push_back({spec.name, spec.shape});
    }
    missing.plan(plan);
    for (const auto& p : plan) missing.write(p.name, torch::zeros(p.shape));
    CHECK_THROWS_WITH(openba::Checkpoint::open(missing.commit()), Contains("missing tensor 'decoder.block.1.inter_attn.kv.bias'"));

    openba::CheckpointWriter extra(dir / "extra", small_config(), {});
    plan.push_back({"decoder.block.1.inter_attn.kv.bias", {32}});
    plan.push_back({"decoder.block.2.mlp.fc_in.weight", {48, 16}});
    extra.plan(plan);
    for (const auto& p : plan) extra.write(p.name, torch::zeros(p.shape));
    CHECK_THROWS_WITH(openba::Checkpoint::open(extra.commit()), Contains("unexpected tensor 'decoder.block.2.mlp.fc_in.weight'"));
  }
  SECTION("sharded index problems") {
    const std::string sharded = save_small(dir / "sharded", openba::DType::F32, 1, 20'000);
    const std::string index = sharded + "/model.safetensors.index.json";
    const std::string text = openba::test::read_bytes(index);
    openba::test::write_bytes(index, text.substr(0, text.size() / 2));
    CHECK_THROWS_WITH(openba::Checkpoint::open(sharded), Contains("index.json") && Contains("malformed JSON"));
    auto json = nlohmann::json::parse(text);
    json["weight_map"]["lm_head.bias"] = "model-99999-of-99999.safetensors";
    openba::test::write_bytes(index, json.dump());
    CHECK_THROWS_WITH(openba::Checkpoint::open(sharded), Contains("model-99999-of-99999.safetensors") && Contains("does not exist"));
    json = nlohmann::json::parse(text);
    json["weight_map"]["lm_head.bias"] = "../elsewhere.safetensors";
    openba::test::write_bytes(index, json.dump());
    CHECK_THROWS_WITH(openba::Checkpoint::open(sharded), Contains("must sit in the checkpoint directory"));
    json = nlohmann::json::parse(text);
    json["weight_map"]["lm_head.bias"] = json["weight_map"]["shared_embedding.weight"];
    if (json["weight_map"]["lm_head.bias"] != nlohmann::json::parse(text)["weight_map"]["lm_head.bias"]) {
      openba::test::write_bytes(index, json.dump());
      CHECK_THROWS_WITH(openba::Checkpoint::open(sharded), Contains("'lm_head.bias'") && Contains("listed"));
    }
  }
}

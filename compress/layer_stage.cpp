#include "compress/layer_stage.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <sstream>

#include "runtime/blockwise.h"
#include "arch/openba/layout.h"
#include "util/error.h"
#include "util/progress.h"

namespace openba {

nlohmann::ordered_json LayerScores::to_json() const {
  nlohmann::ordered_json j;
  j["kind"] = "layer";
  j["method"] = method;
  j["encoder"] = encoder;
  j["decoder"] = decoder;
  return j;
}

LayerScores LayerScores::from_json(const nlohmann::json& j, const std::string& source) {
  try {
    if (j.at("kind").get<std::string>() != "layer") throw Error(source + ": not layer scores (kind is " + j.at("kind").dump() + ")");
    LayerScores s;
    s.method = j.at("method").get<std::string>();
    s.encoder = j.at("encoder").get<std::vector<double>>();
    s.decoder = j.at("decoder").get<std::vector<double>>();
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": malformed layer scores: " + e.what());
  }
}

LayerScores angular_layer_scores(const BlockwiseModel& model, std::vector<BlockBatch>& calibration, Progress* progress) {
  const ModelConfig& c = model.config();
  std::vector<double> sum[2] = {std::vector<double>(c.encoder_layers, 0.0), std::vector<double>(c.decoder_layers, 0.0)};
  std::vector<double> count[2] = {std::vector<double>(c.encoder_layers, 0.0), std::vector<double>(c.decoder_layers, 0.0)};
  BlockwiseRun run;
  run.losses = false;
  run.progress = progress;
  run.observer = [&](bool decoder, int64_t layer, BlockBatch& b, const torch::Tensor& in, const torch::Tensor& out) {
    auto cos = torch::cosine_similarity(in.to(torch::kDouble), out.to(torch::kDouble), -1, 1e-8);  // [B, T]
    auto real = b.real_positions(decoder).squeeze(-1).to(torch::kDouble);
    sum[decoder][layer] += ((1.0 - cos) * real).sum().item<double>();
    count[decoder][layer] += real.sum().item<double>();
  };
  run_blockwise(model, calibration, run);
  LayerScores s;
  s.method = "angular";
  for (int d = 0; d < 2; ++d) {
    auto& out = d ? s.decoder : s.encoder;
    for (size_t i = 0; i < sum[d].size(); ++i) out.push_back(count[d][i] > 0 ? sum[d][i] / count[d][i] : 0.0);
  }
  return s;
}

namespace {
double mean_loss(const std::vector<std::vector<ExampleLoss>>& losses) {
  double nll = 0, tokens = 0;
  for (const auto& batch : losses) {
    for (const auto& l : batch) {
      nll += l.nll_sum;
      tokens += static_cast<double>(l.tokens);
    }
  }
  return tokens > 0 ? nll / tokens : 0.0;
}
}  // namespace

LayerScores loss_layer_scores(const BlockwiseModel& model, std::vector<BlockBatch>& heldout, double baseline,
                              Progress* progress) {
  const ModelConfig& c = model.config();
  LayerScores s;
  s.method = "loss";
  for (int d = 0; d < 2; ++d) {
    const int64_t layers = d ? c.decoder_layers : c.encoder_layers;
    for (int64_t i = 0; i < layers; ++i) {
      BlockwiseRun run;
      run.skip.insert({d == 1, i});
      const double loss = mean_loss(run_blockwise(model, heldout, run));
      (d ? s.decoder : s.encoder).push_back(loss - baseline);
      if (progress) progress->advance(1);
    }
  }
  return s;
}

std::vector<int64_t> lowest_scores(const std::vector<double>& scores, int64_t drop) {
  std::vector<int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    if (scores[a] != scores[b]) return scores[a] < scores[b];
    return a > b;
  });
  std::vector<int64_t> out(order.begin(), order.begin() + std::min<int64_t>(drop, static_cast<int64_t>(order.size())));
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int64_t> parse_layer_list(const std::string& text, int64_t layers, const std::string& flag) {
  std::vector<int64_t> out;
  std::set<int64_t> seen;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used != item.size()) throw Error(flag + ": '" + item + "' is not a layer number");
    if (v < 0 || v >= layers) {
      throw Error(flag + ": layer " + item + " does not exist (the input has layers 0.." + std::to_string(layers - 1) + ")");
    }
    if (!seen.insert(v).second) throw Error(flag + ": layer " + item + " is listed twice");
    out.push_back(v);
  }
  if (static_cast<int64_t>(out.size()) >= layers) {
    throw Error(flag + ": drops all " + std::to_string(layers) + " layers (at least one must stay)");
  }
  std::sort(out.begin(), out.end());
  return out;
}

SurgeryPlan layer_surgery_plan(const Checkpoint& in, const std::vector<int64_t>& drop_encoder,
                               const std::vector<int64_t>& drop_decoder) {
  const ModelConfig& c = in.config();
  // new index -> old index, per stack
  auto kept = [](int64_t layers, const std::vector<int64_t>& drop) {
    std::vector<int64_t> k;
    const std::set<int64_t> d(drop.begin(), drop.end());
    for (int64_t i = 0; i < layers; ++i) {
      if (!d.count(i)) k.push_back(i);
    }
    return k;
  };
  auto enc = std::make_shared<std::vector<int64_t>>(kept(c.encoder_layers, drop_encoder));
  auto dec = std::make_shared<std::vector<int64_t>>(kept(c.decoder_layers, drop_decoder));
  SurgeryPlan plan;
  plan.out_config = c;
  plan.out_config.encoder_layers = static_cast<int64_t>(enc->size());
  plan.out_config.decoder_layers = static_cast<int64_t>(dec->size());
  plan.lm_head_tied = in.lm_head_is_tied();
  // "decoder.block.3.x" in the output is "decoder.block.<old>.x" in the input,
  // except a stack's table (T5's relative position bias), which stays in
  // block 0: it moves to the new first block when the old block 0 is dropped.
  const ModelConfig out_config = plan.out_config;
  auto source = [enc, dec, out_config](const std::string& name) {
    const TensorLocation loc = locate_tensor(name);
    if (loc.stack < 0) return name;
    if (const auto spec = find_tensor_spec(name, out_config); spec && spec->stack_table) return name;
    const auto& map = loc.stack ? *dec : *enc;
    return block_tensor_name(loc.stack == 1, map.at(static_cast<size_t>(loc.layer)), loc.local);
  };
  const Checkpoint* input = &in;
  plan.produce = [input, source](const std::string& name) { return input->tensor(source(name)); };
  plan.sources = [source](const std::string& name) { return std::vector<std::string>{source(name)}; };
  return plan;
}

}  // namespace openba

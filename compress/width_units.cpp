#include "compress/width_units.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "util/error.h"

namespace openba {
namespace {

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

// Indices along an axis that the kept units cover.
std::vector<int64_t> axis_indices(const UnitAxis& a, const std::vector<int64_t>& kept, const ModelConfig& c) {
  std::vector<int64_t> out;
  if (a.gate_up) {
    for (int half = 0; half < 2; ++half) {
      for (int64_t j : kept) out.push_back(half * c.ffn_hidden + j);
    }
    return out;
  }
  for (int64_t u : kept) {
    for (int64_t k = 0; k < a.group; ++k) out.push_back(u * a.group + k);
  }
  return out;
}

}  // namespace

std::vector<UnitAxis> unit_axes(const std::string& name, const ModelConfig& c) {
  const auto spec = find_tensor_spec(name, c);
  if (!spec) throw Error("width pruning: unknown tensor '" + name + "'");
  return spec->units;
}

const std::vector<int64_t>& WidthUnits::of(const UnitAxis& a) const {
  return const_cast<WidthUnits*>(this)->of(a);
}

std::vector<int64_t>& WidthUnits::of(const UnitAxis& a) {
  switch (a.kind) {
    case UnitKind::kHidden: return hidden;
    case UnitKind::kSelfHead: return heads[a.stack].at(static_cast<size_t>(a.layer));
    case UnitKind::kCrossHead: return cross_heads.at(static_cast<size_t>(a.layer));
    case UnitKind::kFfn: return ffn[a.stack].at(static_cast<size_t>(a.layer));
  }
  throw Error("unit kind");
}

nlohmann::ordered_json WidthUnits::to_json() const {
  nlohmann::ordered_json j;
  j["hidden"] = hidden;
  j["encoder_heads"] = heads[0];
  j["decoder_heads"] = heads[1];
  j["decoder_cross_heads"] = cross_heads;
  j["encoder_ffn"] = ffn[0];
  j["decoder_ffn"] = ffn[1];
  return j;
}

WidthUnits all_units(const ModelConfig& c) {
  WidthUnits u;
  u.hidden = iota(c.d_model);
  for (int s = 0; s < 2; ++s) {
    const int64_t layers = s ? c.decoder_layers : c.encoder_layers;
    u.heads[s].assign(static_cast<size_t>(layers), iota(c.num_heads));
    u.ffn[s].assign(static_cast<size_t>(layers), iota(c.ffn_hidden));
  }
  u.cross_heads.assign(static_cast<size_t>(c.decoder_layers), iota(c.num_heads));
  return u;
}

WidthScores WidthScores::zeros(const ModelConfig& c, const std::string& method) {
  WidthScores s;
  s.method = method;
  s.hidden.assign(static_cast<size_t>(c.d_model), 0.0);
  for (int st = 0; st < 2; ++st) {
    const size_t layers = static_cast<size_t>(st ? c.decoder_layers : c.encoder_layers);
    s.heads[st].assign(layers, std::vector<double>(static_cast<size_t>(c.num_heads), 0.0));
    s.ffn[st].assign(layers, std::vector<double>(static_cast<size_t>(c.ffn_hidden), 0.0));
  }
  s.cross_heads.assign(static_cast<size_t>(c.decoder_layers), std::vector<double>(static_cast<size_t>(c.num_heads), 0.0));
  return s;
}

std::vector<double>& WidthScores::of(const UnitAxis& a) {
  switch (a.kind) {
    case UnitKind::kHidden: return hidden;
    case UnitKind::kSelfHead: return heads[a.stack].at(static_cast<size_t>(a.layer));
    case UnitKind::kCrossHead: return cross_heads.at(static_cast<size_t>(a.layer));
    case UnitKind::kFfn: return ffn[a.stack].at(static_cast<size_t>(a.layer));
  }
  throw Error("unit kind");
}

nlohmann::ordered_json WidthScores::to_json() const {
  nlohmann::ordered_json j;
  j["kind"] = "width";
  j["method"] = method;
  j["hidden"] = hidden;
  j["encoder_heads"] = heads[0];
  j["decoder_heads"] = heads[1];
  j["decoder_cross_heads"] = cross_heads;
  j["encoder_ffn"] = ffn[0];
  j["decoder_ffn"] = ffn[1];
  return j;
}

WidthScores WidthScores::from_json(const nlohmann::json& j, const ModelConfig& c, const std::string& source) {
  WidthScores s = zeros(c, "");
  try {
    if (j.at("kind").get<std::string>() != "width") throw Error(source + ": not width scores (kind " + j.at("kind").dump() + ")");
    s.method = j.at("method").get<std::string>();
    auto read = [&](const char* key, auto& target) {
      auto v = j.at(key).get<std::remove_reference_t<decltype(target)>>();
      bool same = v.size() == target.size();
      if constexpr (std::is_same_v<std::remove_reference_t<decltype(target)>, std::vector<std::vector<double>>>) {
        for (size_t i = 0; same && i < v.size(); ++i) same = v[i].size() == target[i].size();
      }
      if (!same) throw Error(source + ": '" + key + "' does not match the model's shape (" + c.summary() + ")");
      target = v;
    };
    read("hidden", s.hidden);
    read("encoder_heads", s.heads[0]);
    read("decoder_heads", s.heads[1]);
    read("decoder_cross_heads", s.cross_heads);
    read("encoder_ffn", s.ffn[0]);
    read("decoder_ffn", s.ffn[1]);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": malformed width scores: " + e.what());
  }
  return s;
}

std::vector<int64_t> top_units(const std::vector<double>& scores, int64_t keep) {
  std::vector<int64_t> order = iota(static_cast<int64_t>(scores.size()));
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
  order.resize(static_cast<size_t>(std::min<int64_t>(keep, static_cast<int64_t>(order.size()))));
  std::sort(order.begin(), order.end());
  return order;
}

at::Tensor slice_tensor(const std::string& name, const at::Tensor& tensor, const ModelConfig& c, const WidthUnits& keep) {
  at::Tensor t = tensor;
  for (const UnitAxis& a : unit_axes(name, c)) {
    const auto idx = axis_indices(a, keep.of(a), c);
    if (static_cast<int64_t>(idx.size()) == t.size(a.axis)) {
      bool identity = true;
      for (size_t i = 0; i < idx.size() && identity; ++i) identity = idx[i] == static_cast<int64_t>(i);
      if (identity) continue;
    }
    t = t.index_select(a.axis, torch::tensor(idx, torch::kLong));
  }
  return t;
}

void accumulate_unit_sums(const std::string& name, const at::Tensor& values, const ModelConfig& c, WidthScores& scores) {
  const at::Tensor v = values.to(torch::kDouble);
  for (const UnitAxis& a : unit_axes(name, c)) {
    at::Tensor per_index = v.dim() == 1 ? v : v.sum(1 - a.axis);  // sums over the other axis
    at::Tensor per_unit;
    if (a.gate_up) {
      per_unit = per_index.view({2, c.ffn_hidden}).sum(0);
    } else {
      per_unit = per_index.view({-1, a.group}).sum(1);
    }
    per_unit = per_unit.contiguous();
    auto& target = scores.of(a);
    const double* p = per_unit.data_ptr<double>();
    for (size_t i = 0; i < target.size(); ++i) target[i] += p[i];
  }
}

ModelConfig pruned_config(const ModelConfig& c, const WidthUnits& keep) {
  ModelConfig out = c;
  out.d_model = static_cast<int64_t>(keep.hidden.size());
  if (!keep.heads[0].empty()) out.num_heads = static_cast<int64_t>(keep.heads[0][0].size());
  else if (!keep.heads[1].empty()) out.num_heads = static_cast<int64_t>(keep.heads[1][0].size());
  if (!keep.ffn[0].empty()) out.ffn_hidden = static_cast<int64_t>(keep.ffn[0][0].size());
  else if (!keep.ffn[1].empty()) out.ffn_hidden = static_cast<int64_t>(keep.ffn[1][0].size());
  return out;
}

int64_t round_width(int64_t n, int64_t m, int64_t limit) {
  if (m <= 1 || n % m == 0 || n == limit || limit < m) return n;
  int64_t r = (n + m / 2) / m * m;
  if (r < m) r = m;
  while (r > limit) r -= m;
  return r;
}

}  // namespace openba

#include "compress/report.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "runtime/checkpoint.h"
#include "arch/openba/layout.h"
#include "util/error.h"
#include "util/format.h"
#include "util/fs.h"

namespace openba {
namespace fs = std::filesystem;

nlohmann::ordered_json parameters_json(const ModelConfig& config, bool lm_head_tied) {
  const ParameterBreakdown p = count_parameters(config, lm_head_tied);
  nlohmann::ordered_json j;
  j["total"] = p.total;
  nlohmann::ordered_json by = nlohmann::ordered_json::object();
  for (int i = 0; i < kComponentCount; ++i) by[component_name(static_cast<Component>(i))] = p.by_component[i];
  j["by_component"] = by;
  return j;
}

namespace {

nlohmann::ordered_json model_json(const Checkpoint& c) {
  nlohmann::ordered_json j;
  j["dir"] = c.dir();
  j["architecture"] = c.config().summary();
  j["encoder_layers"] = c.config().encoder_layers;
  j["decoder_layers"] = c.config().decoder_layers;
  j["d_model"] = c.config().d_model;
  j["num_heads"] = c.config().num_heads;
  j["ffn_hidden"] = c.config().ffn_hidden;
  j["vocab_size"] = c.config().vocab_size;
  j["parameters"] = parameters_json(c.config(), c.lm_head_is_tied());
  j["bytes_on_disk"] = c.bytes_on_disk();
  return j;
}

}  // namespace

void add_model_sections(nlohmann::ordered_json& report, const Checkpoint& in, const Checkpoint& out) {
  report["input"] = model_json(in);
  report["output"] = model_json(out);
  const double before = report["input"]["parameters"]["total"].get<double>();
  const double after = report["output"]["parameters"]["total"].get<double>();
  // The lineage: earlier stages from the input's report.
  nlohmann::ordered_json lineage = nlohmann::ordered_json::array();
  double first = before;
  std::string first_dir = in.dir();
  const std::string previous = (fs::path(in.dir()) / "report.json").string();
  if (fs::is_regular_file(previous)) {
    nlohmann::ordered_json prev;
    try {
      prev = nlohmann::ordered_json::parse(read_text_file(previous));
      first = prev.at("compression").at("first_model_parameters").get<double>();
      first_dir = prev.at("compression").at("first_model").get<std::string>();
      lineage = prev.at("lineage");
      nlohmann::ordered_json entry;
      entry["stage"] = prev.at("stage");
      entry["output"] = prev.at("output").at("architecture");
      entry["parameters"] = prev.at("output").at("parameters").at("total");
      if (prev.contains("heldout")) entry["heldout_loss_after"] = prev["heldout"]["after"]["loss"];
      lineage.push_back(entry);
    } catch (const nlohmann::json::exception& e) {
      throw Error(previous + ": malformed report of the previous stage: " + e.what());
    }
  }
  nlohmann::ordered_json comp;
  comp["parameters_before"] = static_cast<int64_t>(before);
  comp["parameters_after"] = static_cast<int64_t>(after);
  comp["stage_ratio"] = before / after;          // x times smaller
  comp["stage_removed_fraction"] = 1.0 - after / before;
  comp["first_model"] = first_dir;
  comp["first_model_parameters"] = static_cast<int64_t>(first);
  comp["cumulative_ratio"] = first / after;
  comp["cumulative_removed_fraction"] = 1.0 - after / first;
  report["compression"] = comp;
  report["lineage"] = lineage;
}

std::string report_table(const nlohmann::ordered_json& r) {
  std::string out;
  char line[512];
  auto row = [&](const std::string& what, const std::string& before, const std::string& after, const std::string& note) {
    std::snprintf(line, sizeof(line), "  %-26s %-24s %-24s %s\n", what.c_str(), before.c_str(), after.c_str(), note.c_str());
    out += line;
  };
  out += "openba-compress: stage " + r["stage"].get<std::string>() + "\n";
  out += "  architecture before: " + r["input"]["architecture"].get<std::string>() + "\n";
  out += "  architecture after:  " + r["output"]["architecture"].get<std::string>() + "\n";
  row("", "before", "after", "");
  const auto& inp = r["input"]["parameters"];
  const auto& outp = r["output"]["parameters"];
  row("parameters", human_count(inp["total"].get<uint64_t>()), human_count(outp["total"].get<uint64_t>()), "");
  for (auto it = inp["by_component"].begin(); it != inp["by_component"].end(); ++it) {
    const uint64_t a = it.value().get<uint64_t>(), b = outp["by_component"][it.key()].get<uint64_t>();
    if (a == 0 && b == 0) continue;
    row("  " + it.key(), human_count(a), human_count(b), a != b ? "changed" : "");
  }
  const auto& comp = r["compression"];
  std::snprintf(line, sizeof(line), "  compression: this stage %.3fx (%.1f%% fewer parameters); cumulative %.3fx (%.1f%%) vs %s\n",
                comp["stage_ratio"].get<double>(), 100 * comp["stage_removed_fraction"].get<double>(),
                comp["cumulative_ratio"].get<double>(), 100 * comp["cumulative_removed_fraction"].get<double>(),
                comp["first_model"].get<std::string>().c_str());
  out += line;
  if (r.contains("heldout")) {
    const auto& h = r["heldout"];
    auto fmt = [&](const nlohmann::ordered_json& x) {
      char b[64];
      std::snprintf(b, sizeof(b), "%.4f (ppl %.2f)", x["loss"].get<double>(), x["perplexity"].get<double>());
      return std::string(b);
    };
    row("held-out loss", fmt(h["before"]), fmt(h["after"]),
        "(" + std::to_string(h["before"]["tokens"].get<int64_t>()) + " tokens)");
    for (auto it = h["before"]["by_denoiser"].begin(); it != h["before"]["by_denoiser"].end(); ++it) {
      char a[32], b[32];
      std::snprintf(a, sizeof(a), "%.4f", it.value().get<double>());
      std::snprintf(b, sizeof(b), "%.4f", h["after"]["by_denoiser"].value(it.key(), 0.0));
      row("  " + it.key(), a, b, "");
    }
  }
  if (r.contains("removed_summary")) out += "  removed: " + r["removed_summary"].get<std::string>() + "\n";
  if (r.contains("tokenizer")) {
    const auto& t = r["tokenizer"];
    std::snprintf(line, sizeof(line), "  tokenizer: %d -> %d pieces; held-out tokens changed %.3f%%; documents checked %lld (%lld made only of kept pieces, %lld of them encoded differently)\n",
                  t["pieces_before"].get<int>(), t["pieces_after"].get<int>(), 100 * t["changed_token_share"].get<double>(),
                  (long long)t["documents"].get<int64_t>(), (long long)t["documents_all_kept"].get<int64_t>(),
                  (long long)t["check"].value("mismatches", int64_t{0}));
    out += line;
  }
  std::snprintf(line, sizeof(line), "  wall time %s, peak RSS %s (%.3f of the input checkpoint's %s)\n",
                human_duration(r["wall_time_s"].get<double>()).c_str(), human_bytes(r["peak_rss_bytes"].get<uint64_t>()).c_str(),
                r["peak_rss_over_checkpoint"].get<double>(), human_bytes(r["input"]["bytes_on_disk"].get<uint64_t>()).c_str());
  out += line;
  return out;
}

}  // namespace openba
